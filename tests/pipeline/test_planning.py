"""Planning is deterministic: stable unit keys, only new slots, fair post authorship."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from generia_pipelines.generation.planning import (
    InvalidUnitKey,
    UnitKey,
    assign_post_authors,
    avatar_key,
    character_key,
    parse_unit_key,
    plan_character_batches,
    plan_character_slots,
    post_key,
)
from generia_pipelines.partitions import InvalidWorldKey


def test_unit_keys_have_the_documented_shapes() -> None:
    assert character_key("neon-harbor", 7) == "characters/neon-harbor/7"
    assert avatar_key("neon-harbor", "c-123") == "avatars/neon-harbor/c-123"
    assert post_key("neon-harbor", "2026-11-24", 0) == "posts/neon-harbor/2026-11-24/0"
    assert post_key("neon-harbor", date(2026, 11, 24), 0) == "posts/neon-harbor/2026-11-24/0"


def test_parse_round_trips() -> None:
    for key, parsed in [
        ("characters/w/12", UnitKey("characters", "w", "", "12")),
        ("avatars/w/3f2504e0-4f89", UnitKey("avatars", "w", "", "3f2504e0-4f89")),
        ("posts/w/2026-11-24/3", UnitKey("posts", "w", "2026-11-24", "3")),
    ]:
        assert parse_unit_key(key) == parsed
        assert str(parsed) == key
    assert parse_unit_key("posts/w/2026-11-24/3").slot_number == 3
    assert parse_unit_key("avatars/w/c").slot_number is None


@pytest.mark.parametrize(
    "key",
    [
        "",
        "characters/w",
        "characters/w/007",  # two spellings must not name one unit
        "characters/w/-1",
        "characters/w/x",
        "characters/W/1",
        "characters/a|b/1",
        "avatars/w/",
        "avatars/w/a/b",
        "posts/w/2026-11-24",
        "posts/w/2026-13-01/0",
        "posts/w/20261124/0",
        "posts/w/2026-11-24/٣",  # a non-ASCII digit
        "comments/w/1",
        "characters/w/1/extra",
        "characters/" + "a" * 300 + "/1",
    ],
)
def test_parse_refuses_what_the_builders_would_not_make(key: str) -> None:
    with pytest.raises(InvalidUnitKey):
        parse_unit_key(key)


def test_builders_validate_their_parts() -> None:
    with pytest.raises(InvalidWorldKey):
        character_key("Neon", 1)
    with pytest.raises(InvalidUnitKey):
        character_key("neon", -1)
    with pytest.raises(InvalidUnitKey):
        post_key("neon", "2026-11-24", True)
    with pytest.raises(InvalidUnitKey):
        avatar_key("neon", "a/b")
    with pytest.raises(InvalidUnitKey):
        avatar_key("neon", "")
    with pytest.raises(ValueError):
        post_key("neon", "tomorrow", 1)


def test_raising_the_target_plans_only_new_slots() -> None:
    first = plan_character_slots("w", [], 8)
    assert [s.slot for s in first] == list(range(8))
    assert first[3].key == "characters/w/3"
    assert [s.slot for s in plan_character_slots("w", range(8), 12)] == [8, 9, 10, 11]
    assert plan_character_slots("w", range(12), 12) == []
    assert plan_character_slots("w", range(12), 5) == []  # lowering deletes nothing
    assert [s.slot for s in plan_character_slots("w", [0, 2, 5], 6)] == [1, 3, 4]
    with pytest.raises(ValueError):
        plan_character_slots("w", [], -1)


def test_character_batches() -> None:
    assert plan_character_batches(0) == []
    assert plan_character_batches(25) == [
        list(range(10)),
        list(range(10, 20)),
        list(range(20, 25)),
    ]
    assert plan_character_batches([12, 8, 9, 8], batch_size=2) == [[8, 9], [12]]
    for target in range(0, 41):
        batches = plan_character_batches(target)
        assert [slot for batch in batches for slot in batch] == list(range(target))
        assert all(1 <= len(batch) <= 10 for batch in batches)
    with pytest.raises(ValueError):
        plan_character_batches(5, batch_size=0)


def characters(n: int) -> list[str]:
    return [f"char-{i:02d}" for i in range(n)]


def test_within_a_day_nobody_posts_twice_before_everyone_posted_once() -> None:
    for n in range(1, 42):
        cast = characters(n)
        for posts in [*range(0, 2 * n + 2), 250]:
            for day in ("2026-11-24", "2026-11-25"):
                authors = assign_post_authors(cast, posts, day, {})
                assert len(authors) == posts
                assert set(authors) <= set(cast)
                # Every prefix is fair: in slot order no one gets k+1 posts while another
                # still has fewer than k, so the first n slots are n distinct characters.
                seen: Counter[str] = Counter()
                for author in authors:
                    lowest = min(seen[c] for c in cast)
                    assert seen[author] == lowest
                    seen[author] += 1
                counts = Counter(authors)
                if posts >= n:
                    assert set(counts) == set(cast)
                assert (
                    max(counts.values(), default=0) - min((counts[c] for c in cast), default=0) <= 1
                )


def test_assignment_is_deterministic_and_rotates_by_date() -> None:
    cast = characters(10)
    day = "2026-11-24"
    assert assign_post_authors(cast, 7, day, {}) == assign_post_authors(cast, 7, day, {})
    assert assign_post_authors(cast, 7, day, {}) == assign_post_authors(
        list(reversed(cast)), 7, day, {}
    )
    first_authors = {
        assign_post_authors(cast, 1, date(2026, 11, 1) + timedelta(days=i), {})[0]
        for i in range(30)
    }
    assert len(first_authors) >= 5


def test_least_recent_posters_go_first() -> None:
    cast = characters(6)
    recent = {"char-00": 3, "char-01": 3, "char-02": 0, "char-03": 1, "char-04": 0, "char-05": 2}
    authors = assign_post_authors(cast, 3, "2026-11-24", recent)
    assert set(authors) == {"char-02", "char-04", "char-03"}
    last = {"char-02": "2026-11-20", "char-04": "2026-11-10"}
    tie = assign_post_authors(cast, 1, "2026-11-24", recent, last_posted=last)
    assert tie == ["char-04"]  # both have 0 recent posts; char-04 posted longer ago


def test_authorship_evens_out_over_days() -> None:
    for n, posts in [(7, 3), (10, 4), (25, 10), (40, 13), (3, 5)]:
        cast = characters(n)
        totals: Counter[str] = Counter()
        start = date(2026, 11, 1)
        for offset in range(60):
            day = start + timedelta(days=offset)
            authors = assign_post_authors(cast, posts, day, dict(totals))
            totals.update(authors)
            spread = max(totals[c] for c in cast) - min(totals[c] for c in cast)
            assert spread <= 1, (n, posts, offset, totals)


def test_a_resumed_day_keeps_recorded_authors_and_stays_fair() -> None:
    cast = characters(5)
    full = assign_post_authors(cast, 8, "2026-11-24", {})
    kept = {0: full[0], 1: full[1], 2: full[2]}
    assert assign_post_authors(cast, 8, "2026-11-24", {}, assigned=kept) == full
    odd = {0: "char-04", 1: "char-04"}
    resumed = assign_post_authors(cast, 5, "2026-11-24", {}, assigned=odd)
    assert resumed[:2] == ["char-04", "char-04"]
    assert len(set(resumed[2:])) == 3  # the others, once each, before anyone's second post
    assert "char-04" not in resumed[2:]


def test_bad_author_requests() -> None:
    with pytest.raises(ValueError, match="at least one character"):
        assign_post_authors([], 3, "2026-11-24", {})
    assert assign_post_authors([], 0, "2026-11-24", {}) == []
    with pytest.raises(ValueError, match="duplicates"):
        assign_post_authors(["a", "a"], 2, "2026-11-24", {})
    with pytest.raises(ValueError):
        assign_post_authors(["a"], -1, "2026-11-24", {})
