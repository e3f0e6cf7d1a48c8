"""World keys and days, validated: the rules every layer applies, free of Dagster.

Dagster accepts almost any string as a partition key, but ``|`` joins the dimensions of a
multi-partition key and ``,`` separates keys in ranges and tags, so a world called ``a|b``
would silently corrupt every world × date key built from it. Keys are also ledger unit keys
and gRPC arguments, hence the strict alphabet.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date, datetime

from generia_pipelines.errors import GeneriaError

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

    retryable = False


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
