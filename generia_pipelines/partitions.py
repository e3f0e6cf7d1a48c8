"""Partitions of the pipeline: one per world, and one per world and day.

World keys are validated (``world_keys.py``) before they become partitions.
"""

from __future__ import annotations

import os
from datetime import date
from typing import NamedTuple

from dagster import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

from generia_pipelines.errors import ConfigError
from generia_pipelines.world_keys import (
    InvalidPartitionKey,
    InvalidWorldKey,
    parse_day,
    validate_world_key,
)

__all__ = [
    "DATE_DIMENSION",
    "WORLD_DIMENSION",
    "InvalidPartitionKey",
    "InvalidWorldKey",
    "WorldDay",
    "parse_day",
    "posts_start_date",
    "split_world_day_key",
    "validate_world_key",
    "world_day_key",
    "world_days_partitions_def",
    "worlds_partitions",
]

WORLD_DIMENSION = "world"
DATE_DIMENSION = "date"
#: Variable holding the first day of the world × date partitions (YYYY-MM-DD).
START_DATE_VARIABLE = "GENERIA_POSTS_START_DATE"
#: A recent fixed day: worlds × days stays far below Dagster's advised 100k partitions
#: (270 worlds for a year of days), and a fixed date keeps partition keys stable.
DEFAULT_START_DATE = "2026-11-01"
worlds_partitions = DynamicPartitionsDefinition(name="worlds")


def posts_start_date(value: str | None = None) -> str:
    """The first day of the world × date partitions: ``value``, the variable, or the default."""
    if value is None:
        raw = os.environ.get(START_DATE_VARIABLE, "").strip()
        source = START_DATE_VARIABLE
    else:
        raw = value.strip()
        source = "start_date"
    if not raw:
        return DEFAULT_START_DATE
    try:
        return parse_day(raw).isoformat()
    except ValueError:
        raise ConfigError(
            f"{source}={raw!r} is not a date; use YYYY-MM-DD (e.g. {DEFAULT_START_DATE})"
        ) from None


def world_days_partitions_def(
    start_date: str | None = None, *, timezone: str | None = None, end_offset: int = 0
) -> MultiPartitionsDefinition:
    """Partitions of ``world`` × daily ``date``; the start comes from GENERIA_POSTS_START_DATE.

    Every world multiplies the days: keep the start recent (a year of days allows ~270
    worlds under Dagster's advised 100k partitions per asset).
    """
    daily = DailyPartitionsDefinition(
        start_date=posts_start_date(start_date), timezone=timezone, end_offset=end_offset
    )
    return MultiPartitionsDefinition({WORLD_DIMENSION: worlds_partitions, DATE_DIMENSION: daily})


class WorldDay(NamedTuple):
    """One world × date partition, split into its parts."""

    world_id: str
    day: date


def world_day_key(world_id: str, day: date | str) -> MultiPartitionKey:
    """The multi-partition key of a world and day (prints as ``2026-11-24|my-world``)."""
    parsed = parse_day(day)
    return MultiPartitionKey(
        {WORLD_DIMENSION: validate_world_key(world_id), DATE_DIMENSION: parsed.isoformat()}
    )


def split_world_day_key(key: str | MultiPartitionKey) -> WorldDay:
    """Split a world × date key (a ``MultiPartitionKey`` or its ``date|world`` string)."""
    if isinstance(key, MultiPartitionKey):
        parts = key.keys_by_dimension
        if set(parts) != {WORLD_DIMENSION, DATE_DIMENSION}:
            raise InvalidPartitionKey(f"partition key {key!r} is not a world × date key: {parts}")
        world, day = parts[WORLD_DIMENSION], parts[DATE_DIMENSION]
    else:
        day, sep, world = str(key).partition("|")
        if not sep or "|" in world:
            raise InvalidPartitionKey(
                f"partition key {key!r} is not a world × date key ('YYYY-MM-DD|world')"
            )
    try:
        parsed = parse_day(day)
    except ValueError as exc:
        raise InvalidPartitionKey(f"partition key {str(key)!r}: {exc}") from None
    return WorldDay(validate_world_key(world), parsed)
