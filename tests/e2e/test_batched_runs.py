"""Many partitions in one run: each world or world-day is marked on its own, a failing one
does not stop the others, and running the range again does only what is missing."""

from __future__ import annotations

from typing import Any

from dagster import AssetKey, DagsterEventType, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from pipeline_helpers import DAILY, SETUP, Bed

from generia_pipelines.assets.posts import world_days
from generia_pipelines.partitions import worlds_partitions

PROMPT = "A rain-soaked port city where smugglers and poets share the same bars"
SETUP_ASSETS = ("world_brief", "characters", "character_avatars")
DAILY_ASSETS = ("post_drafts", "post_images", "posts")
DAY, NEXT_DAY = "2026-11-20", "2026-11-21"


def _world(world_id: str, **overrides: Any) -> dict[str, Any]:
    return {"id": world_id, "prompt": PROMPT, "characters": 2, "posts_per_day": 2, **overrides}


def _range_run(bed: Bed, assets: list[Any], first: str, last: str) -> Any:
    return materialize(
        assets,
        resources=bed.resources(),
        instance=bed.instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
        raise_on_error=False,
    )


def _materialized(bed: Bed, asset: str) -> set[str]:
    return {str(key) for key in bed.instance.get_materialized_partitions(AssetKey(asset))}


def _failure(result: Any) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "the run should have failed"
    error = failures[-1].step_failure_data.user_failure_data
    return str(error.description if error else failures[-1].step_failure_data.error.message)


def _events(bed: Bed, result: Any, kind: DagsterEventType) -> list[Any]:
    """The run's events of ``kind`` as stored (a failed step's result lacks its logged ones)."""
    records = bed.instance.get_records_for_run(result.run_id, of_type=kind, limit=10_000).records
    return [r.event_log_entry.dagster_event for r in records]


def _checks_by_partition(bed: Bed, result: Any) -> dict[tuple[str, str | None], bool]:
    return {
        (e.asset_check_evaluation_data.check_name, e.asset_check_evaluation_data.partition): (
            e.asset_check_evaluation_data.passed
        )
        for e in _events(bed, result, DagsterEventType.ASSET_CHECK_EVALUATION)
    }


def _images(bed: Bed) -> int:
    assert bed.runware.standin is not None
    return bed.runware.standin.stats.images_generated


def test_one_run_sets_up_a_range_of_worlds_and_marks_only_those_that_finished(bed: Bed) -> None:
    # "w-gone" is a partition but not in the catalog: it fails, the worlds around it do not.
    bed.write_worlds([_world("w-one"), _world("w-two"), _world("w-three")])
    bed.instance.add_dynamic_partitions("worlds", ["w-one", "w-gone", "w-two", "w-three"])
    result = _range_run(bed, SETUP, "w-one", "w-three")
    assert not result.success
    message = _failure(result)
    assert "1 of 4 worlds failed" in message
    assert "w-gone: " in message and "has no world 'w-gone'" in message
    assert bed.instance.get_runs_count() == 1  # one run for the four worlds
    for asset in SETUP_ASSETS:
        assert _materialized(bed, asset) == {"w-one", "w-two", "w-three"}, asset
    status = bed.instance.get_status_by_partition(
        AssetKey("characters"), ["w-one", "w-gone"], worlds_partitions
    )
    assert status is not None
    assert {key: value.value if value else None for key, value in status.items()} == {
        "w-one": "MATERIALIZED",
        "w-gone": "FAILED",
    }
    checks = _checks_by_partition(bed, result)
    for world_id in ("w-one", "w-two", "w-three"):
        assert checks[("character_count_reached", world_id)]
        assert checks[("every_character_has_confirmed_avatar", world_id)]
    assert not any(partition == "w-gone" for _, partition in checks)
    for world_id in ("w-one", "w-two", "w-three"):
        assert len(bed.platform(world_id, "characters")) == 2
    paid = _images(bed)
    assert paid == 3 * 2  # one avatar per character of the three worlds

    # The world appears in the catalog; the same range again does only that world.
    bed.write_worlds([_world(w) for w in ("w-one", "w-gone", "w-two", "w-three")])
    again = _range_run(bed, SETUP, "w-one", "w-three")
    assert again.success
    assert _materialized(bed, "character_avatars") == {"w-one", "w-gone", "w-two", "w-three"}
    assert _images(bed) == paid + 2
    for world_id in ("w-one", "w-gone", "w-two", "w-three"):
        assert len(bed.platform(world_id, "characters")) == 2


def test_one_run_makes_a_rectangle_of_world_days_and_one_worlds_empty_budget_fails_alone(
    bed: Bed,
) -> None:
    broke = _world("w-broke", budget={"daily": {"images": 0}})
    bed.write_worlds([_world("w-one"), broke, _world("w-two")])
    bed.instance.add_dynamic_partitions("worlds", ["w-one", "w-broke", "w-two"])
    assert _range_run(bed, SETUP, "w-one", "w-two").success
    setup_images = _images(bed)

    runs_before = bed.instance.get_runs_count()
    result = _range_run(bed, DAILY, f"{DAY}|w-one", f"{NEXT_DAY}|w-two")
    assert not result.success
    assert bed.instance.get_runs_count() == runs_before + 1
    message = _failure(result)
    assert "2 of 6 world-days failed" in message
    assert f"{DAY}|w-broke" in message and f"{NEXT_DAY}|w-broke" in message
    assert "budget" in message
    good = {f"{day}|{w}" for day in (DAY, NEXT_DAY) for w in ("w-one", "w-two")}
    broke_days = {f"{DAY}|w-broke", f"{NEXT_DAY}|w-broke"}
    # The empty budget stops the broke world's days at their first image.
    assert _materialized(bed, "post_drafts") == good
    assert _materialized(bed, "post_images") == good
    assert _materialized(bed, "posts") == good
    status = bed.instance.get_status_by_partition(
        AssetKey("posts"), sorted(good | broke_days), world_days
    )
    assert status is not None
    assert {k for k, v in status.items() if v is not None and v.value == "FAILED"} == broke_days
    checks = _checks_by_partition(bed, result)
    for key in good:
        assert checks[("every_post_image_confirmed_and_owned_by_author", key)]
        assert checks[("no_duplicate_units", key)]
    for world_id in ("w-one", "w-two"):
        assert len(bed.platform(world_id, "posts")) == 2 * 2
    assert bed.platform("w-broke", "posts") == []
    assert _images(bed) == setup_images + 4 * 2

    # Per-world-day metadata survives batching: each partition's own counts.
    posts_events = [
        e
        for e in _events(bed, result, DagsterEventType.ASSET_MATERIALIZATION)
        if e.asset_key == AssetKey("posts") and e.partition == f"{DAY}|w-one"
    ]
    assert len(posts_events) == 1
    metadata = posts_events[0].step_materialization_data.materialization.metadata
    assert metadata["posts_published"].value == 2

    # The budget is raised; the same rectangle again pays only for the broke world's images.
    bed.write_worlds([_world("w-one"), _world("w-broke"), _world("w-two")])
    again = _range_run(bed, DAILY, f"{DAY}|w-one", f"{NEXT_DAY}|w-two")
    assert again.success
    assert _materialized(bed, "posts") == good | broke_days
    assert _images(bed) == setup_images + 6 * 2
    for world_id in ("w-one", "w-broke", "w-two"):
        assert len(bed.platform(world_id, "posts")) == 2 * 2


def test_a_step_retry_works_only_the_world_days_its_first_attempt_left(bed: Bed) -> None:
    """One post of a two-world range fails once, in a way a retry can fix: the step's retry
    publishes it, and each world-day is reported once, not again by the retry."""
    bed.write_worlds([_world("w-one"), _world("w-two")])
    bed.instance.add_dynamic_partitions("worlds", ["w-one", "w-two"])
    assert _range_run(bed, SETUP, "w-one", "w-two").success
    bed.stack.faults.set("post.CreateAIPost", error_code="INTERNAL", times=1)
    result = _range_run(bed, DAILY, f"{DAY}|w-one", f"{DAY}|w-two")
    assert result.success
    retries = _events(bed, result, DagsterEventType.STEP_UP_FOR_RETRY)
    assert len(retries) == 1
    posts = [
        str(e.partition)
        for e in _events(bed, result, DagsterEventType.ASSET_MATERIALIZATION)
        if e.asset_key == AssetKey("posts")
    ]
    assert sorted(posts) == [f"{DAY}|w-one", f"{DAY}|w-two"]
    for world_id in ("w-one", "w-two"):
        assert len(bed.platform(world_id, "posts")) == 2


def test_a_bad_key_added_by_hand_fails_only_its_own_partition_of_a_range(bed: Bed) -> None:
    bed.write_worlds([_world("w-one"), _world("w-two")])
    bed.instance.add_dynamic_partitions("worlds", ["w-one", "Bad World", "w-two"])
    result = _range_run(bed, SETUP, "w-one", "w-two")
    assert not result.success
    message = _failure(result)
    assert "1 of 3 worlds failed" in message
    assert "Bad World: InvalidWorldKey: invalid world key 'Bad World'" in message
    assert _materialized(bed, "characters") == {"w-one", "w-two"}


def test_a_range_run_tagged_also_with_its_first_partition_works_the_whole_range(
    bed: Bed,
) -> None:
    """A job backfill tags its range runs with the first world-day's per-dimension tags as
    well; Dagster then reports that one partition as the run's, but the run must work and
    report every world-day of its range."""
    bed.write_worlds([_world("w-one"), _world("w-two")])
    bed.instance.add_dynamic_partitions("worlds", ["w-one", "w-two"])
    assert _range_run(bed, SETUP, "w-one", "w-two").success
    result = materialize(
        DAILY,
        resources=bed.resources(),
        instance=bed.instance,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: f"{DAY}|w-one",
            ASSET_PARTITION_RANGE_END_TAG: f"{DAY}|w-two",
            "dagster/partition/date": DAY,
            "dagster/partition/world": "w-one",
        },
    )
    assert result.success
    assert _materialized(bed, "posts") == {f"{DAY}|w-one", f"{DAY}|w-two"}
    for world_id in ("w-one", "w-two"):
        assert len(bed.platform(world_id, "posts")) == 2
