"""Partitions of the pipeline: one per world, and one per world and day.

World keys are validated before they become partitions: Dagster accepts almost any string,
but ``|`` joins the dimensions of a multi-partition key and ``,`` separates keys in ranges
and tags, so a world called ``a|b`` would silently corrupt every world × date key built
from it. Keys are also ledger unit keys and gRPC arguments, hence the strict alphabet.
"""

from __future__ import annotations

import os
import re
import unicodedata
import uuid
from datetime import date, datetime
from typing import NamedTuple

from dagster import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

from generia_pipelines.clients.errors import ConfigError, GeneriaError

WORLD_DIMENSION = "world"
DATE_DIMENSION = "date"
#: Variable holding the first day of the world × date partitions (YYYY-MM-DD).
START_DATE_VARIABLE = "GENERIA_POSTS_START_DATE"
#: A recent fixed day: worlds × days stays far below Dagster's advised 100k partitions
#: (270 worlds for a year of days), and a fixed date keeps partition keys stable.
DEFAULT_START_DATE = "2026-11-01"
WORLD_KEY_MAX = 64
_SHOWN_MAX = 100

_WORLD_KEY_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RULE = (
    "a world key is a UUID or 1-64 lowercase ASCII letters, digits and '-', "
    "starting with a letter or digit"
)


class InvalidPartitionKey(GeneriaError, ValueError):
    """A partition key the pipeline cannot use; the message names it and says why."""


class InvalidWorldKey(InvalidPartitionKey):
    """A world id cannot be a partition key; the message says why."""

    def __init__(self, key: object, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"invalid world key {_shown(key)}: {reason} ({_RULE})")


def _shown(key: object) -> str:
    """The key as messages quote it: its repr, clipped so a 10 kB key does not flood a log."""
    text = repr(key)
    return text if len(text) <= _SHOWN_MAX else f"{text[: _SHOWN_MAX - 2]}…{text[-1]}"


def _why_invalid(key: str) -> str:
    """The first rule a non-matching key breaks, in the order a person would fix them."""
    if not key:
        return "it is empty"
    if key != key.strip():
        return "it has leading or trailing whitespace"
    if len(key) > WORLD_KEY_MAX:
        return f"it is {len(key)} characters long, the limit is {WORLD_KEY_MAX}"
    if "|" in key:
        return "it contains '|', which Dagster uses to join multi-partition keys"
    if "," in key:
        return "it contains ',', which Dagster uses to separate partition keys"
    for char in key:
        if not char.isascii():
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            return f"it contains the non-ASCII character {char!r} ({name})"
    if any(char.isupper() for char in key):
        if _is_uuid(key):
            return f"it is an uppercase UUID; use its lowercase form {key.lower()!r}"
        return "it contains uppercase letters; world keys are lowercase"
    if not key[0].isalnum():
        return f"it starts with {key[0]!r}"
    for char in key:
        if not (char.isalnum() or char == "-"):
            return f"it contains {char!r}"
    return "it does not match the pattern"  # pragma: no cover - every case is named above


def _is_uuid(key: str) -> bool:
    try:
        uuid.UUID(key)
    except ValueError:
        return False
    return True


def validate_world_key(key: object) -> str:
    """Return ``key`` unchanged if it is a usable world partition key, else raise why not.

    A canonical (lowercase, hyphenated) UUID matches the general pattern already; other UUID
    spellings are refused rather than normalised, because the key must equal the world id
    the platform returns.
    """
    if not isinstance(key, str):
        raise InvalidWorldKey(key, f"it is of type {type(key).__name__}, not a string")
    if _WORLD_KEY_RE.fullmatch(key):
        return key
    raise InvalidWorldKey(key, _why_invalid(key))


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


def parse_day(day: date | str) -> date:
    """A ``date`` from itself or from exactly ``YYYY-MM-DD`` (fromisoformat alone takes more)."""
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    if isinstance(day, str) and _DAY_RE.fullmatch(day):
        try:
            return date.fromisoformat(day)
        except ValueError:
            pass
    raise ValueError(f"{day!r} is not a date (YYYY-MM-DD)")
