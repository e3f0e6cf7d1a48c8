"""The per-world report: cost and output per day, each paid call counted once, equal to
what Runware was paid; the assets' own cost figures add up to it without double counting."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import AssetKey, AssetRecordsFilter, materialize
from pipeline_helpers import Bed

from generia_pipelines.assets.report import world_report_asset
from generia_pipelines.cost_report import SETUP_ROW, TOTAL_ROW, world_report

WORLD_ID = "neon-harbor"
DAYS = ("2026-11-20", "2026-11-21")


def _latest(bed: Bed, asset: str, partition: str) -> dict[str, Any]:
    records = bed.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    assert records
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {k: v.value for k, v in materialization.metadata.items()}


def test_the_report_shows_each_days_cost_once_and_sums_to_what_was_paid(bed: Bed) -> None:
    assert bed.setup(WORLD_ID).success
    for day in DAYS:
        assert bed.day(WORLD_ID, day).success
    result = materialize(
        [world_report_asset],
        partition_key=WORLD_ID,
        resources=bed.resources(),
        instance=bed.instance,
    )
    assert result.success
    report = _latest(bed, "world_report", WORLD_ID)
    standin = bed.runware.standin
    assert standin is not None
    # 4 avatars and 6 posts a day, one paid image each.
    assert report["images_paid"] == 4 + 6 * len(DAYS) == standin.stats.images_generated
    assert report["characters"] == 4 and report["posts_published"] == 6 * len(DAYS)
    assert report["days"] == len(DAYS) and report["latest_day"] == DAYS[-1]
    rows = {row.data["period"]: row.data for row in report["by_day"].records}
    assert list(rows) == [SETUP_ROW, *DAYS, TOTAL_ROW]
    assert rows[SETUP_ROW]["images_paid"] == 4 and rows[DAYS[0]]["images_paid"] == 6
    assert report["cost_usd_total"] == pytest.approx(
        sum(rows[p]["cost_usd"] for p in (SETUP_ROW, *DAYS))
    )
    assert report["cost_usd_total"] > 0

    # Each asset shows its own cost, and together they are the world's: no dollar twice.
    own = [
        _latest(bed, "world_brief", WORLD_ID)["cost_usd"],
        _latest(bed, "characters", WORLD_ID)["cost_usd"],
        _latest(bed, "character_avatars", WORLD_ID)["cost_usd"],
    ]
    for day in DAYS:
        for asset in ("post_drafts", "post_images", "posts"):
            own.append(_latest(bed, asset, f"{day}|{WORLD_ID}")["cost_usd"])
    assert sum(own) == pytest.approx(report["cost_usd_total"])
    assert _latest(bed, "character_avatars", WORLD_ID)["cost_usd"] == pytest.approx(
        rows[SETUP_ROW]["cost_usd"] - own[0] - own[1]
    )


def test_an_empty_ledger_gives_an_empty_report() -> None:
    frame = world_report([], [])
    assert list(frame.index) == [TOTAL_ROW]
    assert frame.loc[TOTAL_ROW, "cost_usd"] == 0
