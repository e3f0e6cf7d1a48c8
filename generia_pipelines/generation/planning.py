"""What a materialization must do, decided without I/O: unit keys, slots, batches, authors.

Everything here is deterministic (no clock, no ``hash()``, no randomness), so a retry or a
re-run of the same partition plans the same units and the ledger recognises them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from generia_pipelines.partitions import parse_day, validate_world_key

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


@dataclass(frozen=True)
class CharacterSlot:
    slot: int
    key: str


def plan_character_slots(
    world_id: str, existing_slots: Iterable[int], target: int
) -> list[CharacterSlot]:
    """The character slots below ``target`` that the ledger does not know yet.

    Raising a world's count from 8 to 12 plans slots 8-11 only; lowering it plans nothing
    (characters are never deleted). Existing but unfinished slots are resumed from the
    ledger, not planned again.
    """
    if target < 0:
        raise ValueError(f"target {target} must be >= 0")
    known = set(existing_slots)
    return [
        CharacterSlot(slot, character_key(world_id, slot))
        for slot in range(target)
        if slot not in known
    ]


def plan_character_batches(target: int | Sequence[int], batch_size: int = 10) -> list[list[int]]:
    """Split slots (``range(target)`` or the given slots) into consecutive batches.

    One text call plans a batch, with a summary of the batches before it, so large worlds
    stay diverse without one huge prompt; the platform's batch size is 10.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} must be >= 1")
    if isinstance(target, int):
        if target < 0:
            raise ValueError(f"target {target} must be >= 0")
        slots = list(range(target))
    else:
        slots = sorted(set(target))
    return [slots[start : start + batch_size] for start in range(0, len(slots), batch_size)]


def _tiebreak(day: str, character_id: str) -> str:
    """Stable per-day shuffle: which of equally deserving characters goes first."""
    return hashlib.sha256(f"{day}\x00{character_id}".encode()).hexdigest()


def assign_post_authors(
    character_ids: Sequence[str],
    posts: int,
    day: date | str,
    recent_post_counts: Mapping[str, int] | None = None,
    *,
    last_posted: Mapping[str, date | str] | None = None,
    assigned: Mapping[int, str] | None = None,
) -> list[str]:
    """The author of each post slot ``0..posts-1`` of a day.

    Fair within the day: nobody gets a second post before everyone has one (beyond that,
    counts differ by at most one). Fair across days: the day's first posts go to whoever
    posted least in the recent window (``recent_post_counts``), then least recently
    (``last_posted``, never-posted first), then in a per-date order, so who starts rotates.

    ``assigned`` holds slots whose author is already recorded (a resumed day); they are
    kept and the rest are filled around them. Pass counts from days *before* ``day`` so a
    re-run of the same day computes the same answer.
    """
    if posts < 0:
        raise ValueError(f"posts {posts} must be >= 0")
    characters = list(character_ids)
    if len(set(characters)) != len(characters):
        raise ValueError("character_ids contains duplicates")
    assigned = dict(assigned or {})
    if posts == 0:
        return []
    if not characters:
        raise ValueError("a day with posts needs at least one character")
    day_text = _day(day)
    recent = recent_post_counts or {}
    last = {cid: str(value) for cid, value in (last_posted or {}).items()}

    today: dict[str, int] = dict.fromkeys(characters, 0)
    for slot, author in assigned.items():
        if 0 <= slot < posts and author in today:
            today[author] += 1
    order = sorted(
        characters,
        key=lambda cid: (recent.get(cid, 0), last.get(cid, ""), _tiebreak(day_text, cid)),
    )
    rank = {cid: index for index, cid in enumerate(order)}

    authors: list[str] = []
    for slot in range(posts):
        chosen = assigned.get(slot)
        if chosen is None:
            chosen = min(characters, key=lambda cid: (today[cid], rank[cid]))
            today[chosen] += 1
        authors.append(chosen)
    return authors
