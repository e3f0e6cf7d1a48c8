"""Prompt rendering is pure and carries the context each step needs."""

from __future__ import annotations

import re
from datetime import date

import pytest
from text_helpers import BRIEF, PROFILE, WORLD

from generia_pipelines.generation import prompts
from generia_pipelines.generation.prompts import (
    PROMPTS_DIR,
    render,
    render_avatar_prompt,
    render_character_batch,
    render_character_detail,
    render_post_draft,
    render_reask,
    render_world_brief,
    roster_summary,
)
from generia_pipelines.generation.schemas import CharacterConcept

_PLACEHOLDER = re.compile(r"(?<!\{)\{[a-z_]+\}(?!\})")


def concepts(n: int) -> list[CharacterConcept]:
    return [
        CharacterConcept(display_name=f"Person {i}", role=f"role {i}", hook="hook")
        for i in range(n)
    ]


def test_every_rendered_prompt_is_filled_and_carries_the_world() -> None:
    rendered = [
        render_world_brief(WORLD),
        render_character_batch(WORLD, BRIEF, 10, concepts(3)),
        render_character_detail(WORLD, BRIEF, concepts(1)[0]),
        render_avatar_prompt(WORLD, BRIEF, PROFILE),
        render_post_draft(WORLD, BRIEF, PROFILE, ["a", "b"], date(2026, 11, 24)),
    ]
    for prompt in rendered:
        assert not _PLACEHOLDER.search(prompt.user), prompt.kind
        assert WORLD.prompt in prompt.user
        assert "JSON" in prompt.system
        assert prompt.inputs.world.prompt == WORLD.prompt
    assert [p.kind for p in rendered] == [
        "world_brief",
        "character_batch",
        "character_detail",
        "avatar",
        "post_draft",
    ]
    assert BRIEF.visual_style in rendered[3].user


def test_rendering_is_deterministic() -> None:
    first = render_post_draft(WORLD, BRIEF, PROFILE, ["x"], "2026-11-24")
    second = render_post_draft(WORLD, BRIEF, PROFILE, ["x"], "2026-11-24")
    assert first == second


def test_batch_prompt_lists_earlier_characters_and_count() -> None:
    prompt = render_character_batch(WORLD, BRIEF, 7, concepts(12))
    assert "Plan 7 new inhabitants" in prompt.user
    assert "exactly 7 characters" in prompt.user
    assert "Already living here (12)" in prompt.user
    assert "- Person 11: role 11" in prompt.user
    assert prompt.inputs.count == 7 and len(prompt.inputs.earlier) == 12


def test_first_batch_says_nobody_yet() -> None:
    assert "(nobody yet)" in render_character_batch(WORLD, BRIEF, 10).user


@pytest.mark.parametrize("count", [0, 11])
def test_batch_size_is_bounded(count: int) -> None:
    with pytest.raises(ValueError, match="1 to 10"):
        render_character_batch(WORLD, BRIEF, count)


def test_roster_keeps_every_name_of_a_large_world() -> None:
    summary = roster_summary(concepts(70))
    assert summary.startswith("- also: Person 0, Person 1,")
    assert all(f"Person {i}" in summary for i in range(70))
    assert "- Person 69: role 69" in summary
    assert "role 5\n" not in summary  # older entries are names only


def test_post_prompt_carries_profile_and_recent_posts() -> None:
    recent = [f"post {i} " + "word " * 100 for i in range(8)]
    prompt = render_post_draft(WORLD, BRIEF, PROFILE, recent, "2026-11-24")
    assert "Write today's post by Mira Vale for 2026-11-24." in prompt.user
    for part in (PROFILE.bio, PROFILE.speaking_style, PROFILE.appearance, "tides, tea"):
        assert part in prompt.user
    assert "- post 0 word" in prompt.user and "- post 4 word" in prompt.user
    assert "post 5" not in prompt.user  # only the latest five
    assert all(len(p) <= prompts.RECENT_POST_CHARS for p in prompt.inputs.recent_posts)


def test_post_prompt_without_history() -> None:
    prompt = render_post_draft(WORLD, BRIEF, PROFILE)
    assert "(none yet)" in prompt.user and "Mira Vale." in prompt.user


def test_missing_value_is_an_error_not_a_gap() -> None:
    with pytest.raises(KeyError, match="world_name"):
        render("world_context", {})


def test_reask_lists_the_problems() -> None:
    text = render_reask("PostDraft", ["tags.0: bad", "caption: too long"])
    assert "PostDraft" in text and "- tags.0: bad\n- caption: too long" in text


def test_templates_ship_as_package_data() -> None:
    names = {p.stem for p in PROMPTS_DIR.glob("*.md")}
    assert {"system", "world_brief", "character_batch", "post_draft", "reask"} <= names
