"""The pipeline against platforms that do not serve the specification exactly.

The local stack serves, as asked: the platform's drifted head revision, no reflection, no
GetPost/GetMedia, or a drift no field name can bridge. Each test runs the real assets
through Dagster and reads back what the platform stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance, materialize
from google.protobuf import descriptor_pb2
from pipeline_helpers import Bed
from pipeline_helpers import test_bed as make_bed

from generia_pipelines.assets.world import world_setup
from generia_pipelines.local.revisions import Revision
from generia_pipelines.resources.grpc import CharacterResource, MediaResource, PostResource

WORLD = {
    "id": "glass-canals",
    "name": "Glass Canals",
    "prompt": "A lagoon city where glassblowers and night ferrymen share the same bridges",
    "characters": 3,
    "posts_per_day": 3,
}
DAY = "2026-11-20"
HEAD = Path(__file__).resolve().parents[2] / "generia_pipelines" / "local" / "platform_head.binpb"


def _bed(tmp_path: Path, **stack_options: Any) -> Any:
    return make_bed(tmp_path, **stack_options)


def _check_verdicts(result: Any) -> dict[str, Any]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def _log_lines(instance: DagsterInstance, run_id: str) -> list[str]:
    return [
        record.user_message
        for record in instance.all_logs(run_id)
        if record.user_message and "platform contract" in record.user_message
    ]


def _images_drawn(bed: Bed) -> int:
    assert bed.runware.standin is not None
    return bed.runware.standin.stats.images_generated


def _assert_world_populated(bed: Bed) -> None:
    """Characters carry their JSON profile as meta, media sit under the right world and
    character, and every post is its author's with its author's image."""
    people = bed.platform(WORLD["id"], "characters")
    assert len(people) == WORLD["characters"]
    for person in people:
        profile = json.loads(person["meta"])  # meta is the profile, not an avatar URL
        assert profile["display_name"] == person["display_name"]
        assert person["avatar_media_id"]
    ids = {p["id"] for p in people}
    media = {m["media_id"]: m for m in bed.platform(WORLD["id"], "media")}
    for item in media.values():
        assert item["world_id"] == WORLD["id"] and item["character_id"] in ids
        assert item["object_key"].startswith(f"{WORLD['id']}/{item['character_id']}/")
    posts = bed.platform(WORLD["id"], "posts")
    assert len(posts) == WORLD["posts_per_day"]
    for post in posts:
        assert media[post["media_id"]]["character_id"] == post["character_id"]
        assert post["tags"]


def test_drifted_platform_is_spoken_by_field_name(tmp_path: Path) -> None:
    with _bed(tmp_path, revision=Revision.DRIFTED) as bed:
        bed.write_worlds([WORLD])
        setup = bed.setup(WORLD["id"])
        assert setup.success
        day = bed.day(WORLD["id"], DAY)
        assert day.success
        _assert_world_populated(bed)

        verdicts = _check_verdicts(day)
        owned = verdicts["every_post_image_confirmed_and_owned_by_author"]
        assert owned.passed, owned.metadata
        assert _check_verdicts(setup)["every_character_has_confirmed_avatar"].passed

        lines = _log_lines(bed.instance, setup.run_id)
        assert any("drifted" in line and "Character.meta" in line for line in lines), lines
        assert any("GetPresignedUploadURLRequest.world_id" in line for line in lines), lines
        shown = day.asset_materializations_for_node("day_posts")
        contract = [
            m.metadata["platform_contract"].value
            for m in shown
            if "platform_contract" in m.metadata
        ]
        assert contract and "Post.tags" in contract[0] and "Post.media_id" in contract[0]


def _incompatible_revision(path: Path) -> Path:
    """The head revision, with CreateAIPost's tags turned into one string: no name bridges it."""
    head = descriptor_pb2.FileDescriptorSet.FromString(HEAD.read_bytes())
    for proto in head.file:
        for message in proto.message_type:
            if proto.package == "post" and message.name == "CreateAIPostRequest":
                for field in message.field:
                    if field.name == "tags":
                        field.label = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    path.write_bytes(head.SerializeToString())
    return path


def test_incompatible_platform_is_refused_before_any_image_is_paid(tmp_path: Path) -> None:
    revision = _incompatible_revision(tmp_path / "incompatible.binpb")
    with _bed(tmp_path, revision=revision) as bed:
        bed.write_worlds([WORLD])
        assert bed.setup(WORLD["id"]).success  # setup does not call the Post service
        drawn = _images_drawn(bed)
        day = bed.day(WORLD["id"], DAY, raise_on_error=False)
        assert not day.success
        message = _failure(day)
        assert "post.PostService at 127.0.0.1:" in message
        assert "cannot speak" in message and "the run stopped before any paid call" in message
        assert "CreateAIPostRequest.tags: ours 'repeated string tags = 5'" in message
        assert "theirs 'string tags = 5'; incompatible" in message
        assert "Post.tags" in message  # every difference is listed, bridged ones too
        assert _images_drawn(bed) == drawn  # not one post image paid for
        assert bed.platform(WORLD["id"], "posts") == []


def _failure(result: Any) -> str:
    """The error a failed run shows: a resource's refusal is its setup's failure event."""
    failed = (DagsterEventType.STEP_FAILURE, DagsterEventType.RESOURCE_INIT_FAILURE)
    event = next(e for e in result.all_events if e.event_type in failed)
    return str(event.event_specific_data.error.to_string())


def test_without_reflection_the_pipeline_warns_and_works(tmp_path: Path) -> None:
    with _bed(tmp_path, reflection=False) as bed:
        bed.write_worlds([WORLD])
        setup = bed.setup(WORLD["id"])
        assert setup.success and bed.day(WORLD["id"], DAY).success
        _assert_world_populated(bed)
        lines = _log_lines(bed.instance, setup.run_id)
        assert any("not checked" in line and "UNIMPLEMENTED" in line for line in lines), lines


def test_require_refuses_a_platform_without_reflection(tmp_path: Path) -> None:
    with _bed(tmp_path, reflection=False) as bed:
        bed.write_worlds([WORLD])
        env = bed.stack.env
        strict = bed.resources(
            character=CharacterResource(
                address=env["GENERIA_CHARACTER_ADDR"], contract_check="require"
            ),
            media=MediaResource(address=env["GENERIA_MEDIA_ADDR"], contract_check="require"),
            post=PostResource(address=env["GENERIA_POST_ADDR"], contract_check="require"),
        )
        bed.instance.add_dynamic_partitions("worlds", [WORLD["id"]])
        result = materialize(
            [world_setup],
            partition_key=WORLD["id"],
            resources=strict,
            instance=bed.instance,
            raise_on_error=False,
        )
        assert not result.success
        assert "GENERIA_CONTRACT_CHECK=require" in _failure(result)
        assert _images_drawn(bed) == 0 and bed.platform(WORLD["id"], "characters") == []


def test_checks_say_not_checkable_without_the_lookups(tmp_path: Path) -> None:
    with _bed(tmp_path, lookups=False) as bed:
        bed.write_worlds([WORLD])
        assert bed.setup(WORLD["id"]).success
        day = bed.day(WORLD["id"], DAY)
        assert day.success
        verdict = _check_verdicts(day)["every_post_image_confirmed_and_owned_by_author"]
        assert verdict.severity.value == "WARN"
        assert verdict.description.startswith("not checkable on this platform")
        assert "GetPost" in verdict.description and "GetMedia" in verdict.description
        assert len(bed.platform(WORLD["id"], "posts")) == WORLD["posts_per_day"]


@pytest.mark.parametrize("mode", ["strict", ""])
def test_a_bad_contract_setting_names_the_variable(tmp_path: Path, mode: str) -> None:
    with _bed(tmp_path) as bed:
        bed.write_worlds([WORLD])
        env = bed.stack.env
        resources = bed.resources(
            character=CharacterResource(address=env["GENERIA_CHARACTER_ADDR"], contract_check=mode)
        )
        bed.instance.add_dynamic_partitions("worlds", [WORLD["id"]])
        result = materialize(
            [world_setup],
            partition_key=WORLD["id"],
            resources=resources,
            instance=bed.instance,
            raise_on_error=False,
        )
        assert not result.success
        text = _failure(result)
        assert "GENERIA_CONTRACT_CHECK=" in text and "off, warn, require" in text
