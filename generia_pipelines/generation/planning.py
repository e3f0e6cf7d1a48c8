"""What a materialization must do, decided without I/O: unit keys, slots, batches, authors.

Everything here is deterministic (no clock, no ``hash()``, no randomness), so a retry or a
re-run of the same partition plans the same units and the ledger recognises them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from generia_pipelines.units.keys import (
    AVATARS,
    BRIEFS,
    CHARACTER_ID_MAX,
    CHARACTERS,
    POSTS,
    UNIT_KEY_MAX,
    UNIT_KINDS,
    InvalidUnitKey,
    UnitKey,
    UnitKind,
    avatar_key,
    brief_key,
    character_key,
    parse_unit_key,
    post_key,
)
from generia_pipelines.world_keys import parse_day

__all__ = [
    "AVATARS",
    "BRIEFS",
    "CHARACTERS",
    "CHARACTER_ID_MAX",
    "POSTS",
    "UNIT_KEY_MAX",
    "UNIT_KINDS",
    "CharacterSlot",
    "InvalidUnitKey",
    "UnitKey",
    "UnitKind",
    "assign_post_authors",
    "avatar_key",
    "brief_key",
    "character_key",
    "parse_unit_key",
    "plan_character_batches",
    "plan_character_slots",
    "post_key",
]


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
    day_text = parse_day(day).isoformat()
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
