"""The unit-key scheme: one deterministic key per unit of work, so every run names it alike.

``briefs/{world}``, ``characters/{world}/{slot}``, ``avatars/{world}/{character_id}`` and
``posts/{world}/{date}/{slot}``: the ledger's rows, the leases on them and the platform's
``idempotency-key`` metadata all use these strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from generia_pipelines.world_keys import parse_day, validate_world_key

UnitKind = Literal["briefs", "characters", "avatars", "posts"]
BRIEFS: UnitKind = "briefs"
CHARACTERS: UnitKind = "characters"
AVATARS: UnitKind = "avatars"
POSTS: UnitKind = "posts"
UNIT_KINDS: tuple[UnitKind, ...] = (BRIEFS, CHARACTERS, AVATARS, POSTS)
#: Longest unit key: 'avatars/' + 64-char world + '/' + 128-char character id.
UNIT_KEY_MAX = 255
CHARACTER_ID_MAX = 128


class InvalidUnitKey(ValueError):
    """A string that is not a unit key of this pipeline."""


@dataclass(frozen=True)
class UnitKey:
    """A parsed unit key. ``partition`` is the ISO date of a post, else ``""``; ``slot`` is
    the slot number (characters, posts) or the character id (avatars)."""

    kind: UnitKind
    world_id: str
    partition: str
    slot: str

    def __str__(self) -> str:
        if self.kind == POSTS:
            return f"{POSTS}/{self.world_id}/{self.partition}/{self.slot}"
        if self.kind == BRIEFS:
            return f"{BRIEFS}/{self.world_id}"
        return f"{self.kind}/{self.world_id}/{self.slot}"

    @property
    def slot_number(self) -> int | None:
        """The slot as a number (None for avatars, whose slot is a character id)."""
        return None if self.kind in (AVATARS, BRIEFS) else int(self.slot)


def _slot(slot: int) -> str:
    if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
        raise InvalidUnitKey(f"slot {slot!r} must be a non-negative integer")
    return str(slot)


def _character_id(character_id: str) -> str:
    if not isinstance(character_id, str) or not character_id.strip():
        raise InvalidUnitKey(f"character id {character_id!r} must be a non-empty string")
    if len(character_id) > CHARACTER_ID_MAX or any(c in character_id for c in "/ \t\r\n"):
        raise InvalidUnitKey(
            f"character id {character_id!r} must be at most {CHARACTER_ID_MAX} characters "
            "without '/' or whitespace"
        )
    return character_id


def _day(day: date | str) -> str:
    return parse_day(day).isoformat()


def brief_key(world_id: str) -> str:
    """``briefs/{world}``: the world's generated description, paid for once."""
    return f"{BRIEFS}/{validate_world_key(world_id)}"


def character_key(world_id: str, slot: int) -> str:
    """``characters/{world}/{slot}``: the slot-th character of a world (0-based)."""
    return f"{CHARACTERS}/{validate_world_key(world_id)}/{_slot(slot)}"


def avatar_key(world_id: str, character_id: str) -> str:
    """``avatars/{world}/{character_id}``: the current avatar of a created character."""
    return f"{AVATARS}/{validate_world_key(world_id)}/{_character_id(character_id)}"


def post_key(world_id: str, day: date | str, slot: int) -> str:
    """``posts/{world}/{date}/{slot}``: the slot-th post of a world's day (0-based)."""
    return f"{POSTS}/{validate_world_key(world_id)}/{_day(day)}/{_slot(slot)}"


def parse_unit_key(key: str) -> UnitKey:
    """Split a unit key into its parts, refusing anything the builders would not produce."""
    if not isinstance(key, str) or len(key) > UNIT_KEY_MAX:
        raise InvalidUnitKey(f"{key!r} is not a unit key (a string of at most {UNIT_KEY_MAX})")
    parts = key.split("/")
    try:
        if parts[0] == POSTS and len(parts) == 4:
            rebuilt = post_key(parts[1], parts[2], _int(parts[3]))
            parsed = UnitKey(POSTS, parts[1], parts[2], parts[3])
        elif parts[0] == CHARACTERS and len(parts) == 3:
            rebuilt = character_key(parts[1], _int(parts[2]))
            parsed = UnitKey(CHARACTERS, parts[1], "", parts[2])
        elif parts[0] == BRIEFS and len(parts) == 2:
            rebuilt = brief_key(parts[1])
            parsed = UnitKey(BRIEFS, parts[1], "", "")
        elif parts[0] == AVATARS and len(parts) == 3:
            rebuilt = avatar_key(parts[1], parts[2])
            parsed = UnitKey(AVATARS, parts[1], "", parts[2])
        else:
            raise InvalidUnitKey("unknown shape")
    except ValueError as exc:
        raise InvalidUnitKey(
            f"{key!r} is not a unit key (characters/{{world}}/{{slot}}, "
            f"avatars/{{world}}/{{character_id}} or posts/{{world}}/{{date}}/{{slot}}): {exc}"
        ) from None
    if rebuilt != key:  # e.g. a zero-padded slot: two spellings must not name one unit
        raise InvalidUnitKey(f"{key!r} is not in canonical form ({rebuilt!r})")
    return parsed


def _int(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise InvalidUnitKey(f"slot {text!r} is not a non-negative integer")
    return int(text)
