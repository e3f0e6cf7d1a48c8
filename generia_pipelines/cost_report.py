"""A world's cost and output per day, as one DataFrame: what the data team reads to see where
the money went. Pure: it takes the ledger's units and paid calls and does no I/O.

Each paid call is counted once, under the unit it was made for, so no asset repeats
another's cost: the setup row carries the brief, the characters' texts and the avatars'
images; each day's row carries its drafts' texts and its images.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import pandas as pd

from generia_pipelines.units.keys import AVATARS, CHARACTERS, POSTS
from generia_pipelines.units.model import Unit
from generia_pipelines.units.reports import PaidCall

#: Paid work that is no unit of its own (planning a batch of characters).
OTHER = "other"
#: The row of a world's setup (the units without a day).
SETUP_ROW = "setup"
TOTAL_ROW = "total"
COLUMNS = (
    "characters",
    "avatars",
    "posts_published",
    "posts_unfinished",
    "failures",
    "images_paid",
    "text_calls",
    "cost_usd",
)


def _row_of(partition: str) -> str:
    return partition or SETUP_ROW


def world_report(units: Iterable[Unit], calls: Sequence[PaidCall]) -> pd.DataFrame:
    """One row per period (``setup``, then each day in order) and a ``total`` row."""
    rows: dict[str, dict[str, float]] = {}

    def row(partition: str) -> dict[str, float]:
        return rows.setdefault(_row_of(partition), dict.fromkeys(COLUMNS, 0))

    for unit in units:
        counts = row(unit.partition)
        if unit.kind == CHARACTERS and unit.done:
            counts["characters"] += 1
        elif unit.kind == AVATARS and unit.done:
            counts["avatars"] += 1
        elif unit.kind == POSTS:
            counts["posts_published" if unit.done else "posts_unfinished"] += 1
        if unit.error and not unit.done:
            counts["failures"] += 1
    for call in calls:
        counts = row(call.partition if call.unit_kind != OTHER else "")
        counts["images_paid"] += call.images
        counts["text_calls"] += call.text_calls
        counts["cost_usd"] += call.usd
    order = sorted(rows, key=lambda name: (name != SETUP_ROW, name))
    frame = pd.DataFrame(
        {column: [float(rows[name][column]) for name in order] for column in COLUMNS},
        index=pd.Index(order, name="period"),
    )
    frame.loc[TOTAL_ROW] = frame.sum()
    integer_columns = [c for c in COLUMNS if c != "cost_usd"]
    frame[integer_columns] = frame[integer_columns].astype(int)
    frame["cost_usd"] = frame["cost_usd"].astype(float).round(6)
    return frame


def cost_of(
    calls: Sequence[PaidCall],
    unit_kinds: Collection[str],
    *,
    call_kind: str | None = None,
    partition: str | None = None,
) -> float:
    """What the calls made for these kinds of unit cost (of one call kind and partition if
    given): each asset's own cost, so that no two assets show the same dollar."""
    return round(
        sum(
            call.usd
            for call in calls
            if call.unit_kind in unit_kinds
            and (call_kind is None or call.call_kind == call_kind)
            and (partition is None or call.partition == partition)
        ),
        6,
    )


def days_of(frame: pd.DataFrame) -> pd.DataFrame:
    """The per-day rows only (no setup, no total)."""
    return frame.drop(index=[SETUP_ROW, TOTAL_ROW], errors="ignore")
