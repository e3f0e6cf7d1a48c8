"""The per-world report (partitioned by world): cost and output per day, from the ledger.

Its numeric metadata is one world's, so the asset's Plots view for a world shows that
world's totals over time, not every world on one axis; the table shows its days.
"""

import pandas as pd
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    multi_asset,
)

from generia_pipelines.cost_report import SETUP_ROW, TOTAL_ROW, days_of, world_report
from generia_pipelines.partitions import validate_world_key, worlds_partitions
from generia_pipelines.resources.ledger import LedgerResource
from generia_pipelines.units.keys import UNIT_KINDS

from .batch import PartitionOutcome, backfill_policy, run_partition_keys, run_partitions
from .common import GROUP
from .failures import fail_fast_on_bad_input
from .posts import ONE_WORLD, POSTS_KEY
from .world import AVATARS_KEY, CHARACTERS_KEY

REPORT_ASSET = AssetKey("world_report")
#: How many of the latest days the table shows (the totals cover all of them).
SHOWN_DAYS = 31


def _table(frame: pd.DataFrame) -> MetadataValue:
    columns = [TableColumn("period", "string")] + [
        TableColumn(str(name), "float" if name == "cost_usd" else "int") for name in frame.columns
    ]
    records = [
        TableRecord(
            {
                "period": str(period),
                **{str(k): float(v) if k == "cost_usd" else int(v) for k, v in row.items()},
            }
        )
        for period, row in frame.iterrows()
    ]
    return MetadataValue.table(records, schema=TableSchema(columns=columns))


def report_result(ledger: LedgerResource, world_id: str) -> MaterializeResult:
    """The world's report from its ledger rows."""
    book = ledger.ledger
    units = [unit for kind in UNIT_KINDS for unit in book.units(world_id, kind)]
    frame = world_report(units, book.paid_calls(world_id))
    days = days_of(frame)
    shown = (
        frame.loc[[SETUP_ROW, *days.index[-SHOWN_DAYS:], TOTAL_ROW]] if len(frame) > 1 else frame
    )
    total = frame.loc[TOTAL_ROW]
    latest = days.iloc[-1] if len(days) else None
    return MaterializeResult(
        asset_key=REPORT_ASSET,
        metadata={
            "by_day": _table(shown),
            "cost_usd_total": float(total["cost_usd"]),
            "cost_usd_setup": float(frame.loc[SETUP_ROW, "cost_usd"])
            if SETUP_ROW in frame.index
            else 0.0,
            "cost_usd_latest_day": float(latest["cost_usd"]) if latest is not None else 0.0,
            "latest_day": str(days.index[-1]) if len(days) else "none",
            "days": len(days),
            "characters": int(total["characters"]),
            "posts_published": int(total["posts_published"]),
            "images_paid": int(total["images_paid"]),
            "failures": int(total["failures"]),
        },
    )


@multi_asset(
    specs=[
        AssetSpec(
            REPORT_ASSET,
            deps=[
                CHARACTERS_KEY,
                AVATARS_KEY,
                AssetDep(POSTS_KEY, partition_mapping=ONE_WORLD),
            ],
            description="The world's cost and output per day (characters, posts, images "
            "paid, cost, failures), each paid call counted once.",
            group_name=GROUP,
            kinds={"python", "pandas"},
            partitions_def=worlds_partitions,
            skippable=True,
        )
    ],
    partitions_def=worlds_partitions,
    backfill_policy=backfill_policy(),
    can_subset=True,
)
async def world_report_asset(context: AssetExecutionContext, ledger: LedgerResource):
    """Every world of the run's report, each reported as it is made."""

    async def one(key: str) -> PartitionOutcome:
        return PartitionOutcome(key, [report_result(ledger, validate_world_key(key))])

    async def report_all() -> BaseException | None:
        keys = run_partition_keys(context)
        report = await run_partitions(context, keys, one, in_flight=1)
        return report.failure("worlds")

    failure = await fail_fast_on_bad_input(report_all)()
    if failure is not None:
        raise failure
    for _ in ():  # nothing to yield: each world was reported by log_event
        yield
