"""The graph says what a world's days need: its characters and their avatars; an asset asked
for before its inputs exist fails once, saying what to materialize, without retries."""

from __future__ import annotations

from dagster import (
    AssetKey,
    DagsterEventType,
    MultiToSingleDimensionPartitionMapping,
    materialize,
)
from pipeline_helpers import Bed

from generia_pipelines.assets.posts import IMAGES_KEY, POSTS_KEY, day_posts
from generia_pipelines.definitions import defs
from generia_pipelines.partitions import world_day_key

WORLD_ID = "neon-harbor"
DAY = "2026-11-20"


def test_a_worlds_days_depend_on_its_characters_and_avatars_world_by_world() -> None:
    graph = defs.resolve_asset_graph()
    drafts = AssetKey("post_drafts")
    assert {AssetKey("characters"), AssetKey("character_avatars")} <= graph.get(drafts).parent_keys
    for parent in (AssetKey("characters"), AssetKey("character_avatars")):
        mapping = graph.get_partition_mapping(drafts, parent)
        assert isinstance(mapping, MultiToSingleDimensionPartitionMapping)
        assert mapping.partition_dimension_name == "world"
    # ... so every daily asset has the whole setup upstream of it.
    assert {AssetKey("world_brief"), AssetKey("characters")} <= graph.get_ancestor_asset_keys(
        AssetKey("posts")
    )


def test_posts_before_drafts_fail_once_naming_what_to_materialize(bed: Bed) -> None:
    assert bed.setup(WORLD_ID).success
    result = materialize(
        [day_posts],
        selection=[IMAGES_KEY, POSTS_KEY],
        partition_key=world_day_key(WORLD_ID, DAY),
        resources=bed.resources(),
        instance=bed.instance,
        raise_on_error=False,
    )
    assert not result.success
    events = result.all_events
    assert not [e for e in events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    failure = next(e for e in events if e.event_type == DagsterEventType.STEP_FAILURE)
    data = failure.step_failure_data
    assert data.user_failure_data is not None
    description = str(data.user_failure_data.description)
    assert f"no drafts for {WORLD_ID} on {DAY}: materialize post_drafts first" in description
    assert "not retried" in description
    assert data.error is not None and data.error.cause is None  # no second traceback


def test_every_asset_check_says_what_it_verifies() -> None:
    graph = defs.resolve_asset_graph()
    checks = list(graph.asset_check_keys)
    assert len(checks) == 6
    for key in checks:
        description = graph.get_check_spec(key).description
        assert description and len(description) > 30, key
