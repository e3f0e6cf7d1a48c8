"""The world's assets through Dagster against the local stack: from brief to posts."""

from __future__ import annotations

from collections import Counter

from pipeline_helpers import Bed

WORLD_ID = "neon-harbor"
DAY = "2026-11-20"


def _checks(result) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_world_setup_then_a_day_of_posts(bed: Bed) -> None:
    setup = bed.setup(WORLD_ID)
    assert setup.success
    people = bed.platform(WORLD_ID, "characters")
    assert len(people) == 4 and all(p["is_ai"] for p in people)
    assert len({p["display_name"] for p in people}) == 4
    assert all(p.get("avatar_media_id") for p in people)
    assert _checks(setup) == {
        "character_count_reached": True,
        "no_duplicate_units": True,
        "every_character_has_confirmed_avatar": True,
    }

    day = bed.day(WORLD_ID, DAY)
    assert day.success
    published = bed.platform(WORLD_ID, "posts")
    assert len(published) == 6
    by_author = Counter(p["character_id"] for p in published)
    assert set(by_author) == {p["id"] for p in people}  # everyone posts before anyone twice
    assert max(by_author.values()) - min(by_author.values()) <= 1
    media = {m["media_id"]: m for m in bed.platform(WORLD_ID, "media")}
    for item in published:
        assert media[item["media_id"]]["character_id"] == item["character_id"]
    assert len({p["caption"] for p in published}) == 6
    checks = _checks(day)
    assert checks["captions_and_tags_within_limits"]
    assert checks["every_post_image_confirmed_and_owned_by_author"]
    images = bed.runware.standin.stats.images_generated if bed.runware.standin else -1
    assert images == 4 + 6  # one paid image per avatar and per post


def test_second_materialization_creates_nothing(bed: Bed) -> None:
    assert bed.setup(WORLD_ID).success
    assert bed.day(WORLD_ID, DAY).success
    standin = bed.runware.standin
    assert standin is not None
    before = (
        len(bed.platform(WORLD_ID, "characters")),
        len(bed.platform(WORLD_ID, "posts")),
        standin.stats.images_generated,
    )
    assert bed.setup(WORLD_ID).success
    assert bed.day(WORLD_ID, DAY).success
    after = (
        len(bed.platform(WORLD_ID, "characters")),
        len(bed.platform(WORLD_ID, "posts")),
        standin.stats.images_generated,
    )
    assert after == before == (4, 6, 10)
