"""Worlds that change in the catalog: a new prompt rewrites the brief (and says so), a lower
character count stops the extra characters' posts (and says so), nothing is deleted."""

from __future__ import annotations

from typing import Any

from dagster import AssetKey, AssetRecordsFilter
from pipeline_helpers import Bed

WORLD_ID = "neon-harbor"
DAY = "2026-11-20"
OLD = "A rain-soaked port city where smugglers and poets share the same bars"
NEW = "A frozen observatory town where astronomers trade star charts for firewood"


def _world(**overrides: Any) -> dict[str, Any]:
    return {"id": WORLD_ID, "prompt": OLD, "characters": 4, "posts_per_day": 6, **overrides}


def _metadata(bed: Bed, asset: str, partition: str = WORLD_ID) -> dict[str, Any]:
    records = bed.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    assert records and records[0].asset_materialization is not None
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_a_changed_prompt_rewrites_the_brief_and_says_why(bed: Bed) -> None:
    bed.write_worlds([_world()])
    assert bed.setup(WORLD_ID).success
    first = _metadata(bed, "world_brief")
    assert first["outcome"] == "created" and first["regenerated_because"] == "not regenerated"
    assert bed.setup(WORLD_ID).success
    assert _metadata(bed, "world_brief")["outcome"] == "reused"

    bed.write_worlds([_world(prompt=NEW)])
    assert bed.setup(WORLD_ID).success
    again = _metadata(bed, "world_brief")
    assert again["outcome"] == "regenerated"
    assert "prompt or description changed" in again["regenerated_because"]
    assert again["summary"] != first["summary"]
    # The characters made from the old brief stay, none is made again.
    assert len(bed.platform(WORLD_ID, "characters")) == 4
    # The next setup keeps the new brief.
    assert bed.setup(WORLD_ID).success
    assert _metadata(bed, "world_brief")["outcome"] == "reused"


def test_a_lowered_character_count_stops_the_extra_characters_posts(bed: Bed) -> None:
    bed.write_worlds([_world()])
    assert bed.setup(WORLD_ID).success
    people = bed.platform(WORLD_ID, "characters")
    bed.write_worlds([_world(characters=2)])
    assert bed.setup(WORLD_ID).success
    report = _metadata(bed, "characters")
    assert report["characters_beyond_target"] == 2 and report["target"] == 2
    assert report["resting_characters"] != "none"
    assert bed.day(WORLD_ID, DAY).success
    authors = {p["character_id"] for p in bed.platform(WORLD_ID, "posts")}
    ledger = bed.ledger()
    kept = {
        str(u.character_id)
        for u in ledger.units(WORLD_ID, "characters")
        if u.done and (u.slot_number or 0) < 2
    }
    assert authors == kept and len(kept) == 2
    assert len(bed.platform(WORLD_ID, "characters")) == len(people) == 4  # nobody deleted
