"""The schemas enforce the platform's limits, and their strict JSON form is accepted by APIs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from text_helpers import BRIEF, PROFILE, VALID_POST

from generia_pipelines.clients.text.structured import (
    ChatReply,
    Rejection,
    parse_reply,
    strict_json_schema,
)
from generia_pipelines.generation.schemas import (
    SCHEMAS,
    AvatarPrompt,
    CharacterBatchPlan,
    CharacterConcept,
    CharacterProfile,
    PostDraft,
    WorldBrief,
    normalize_tag,
)


def concept(name: str = "Mira Vale") -> dict[str, str]:
    return {"display_name": name, "role": "lighthouse keeper", "hook": "counts eels"}


def fields_of(error: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in error.errors()}


# --- PostDraft ----------------------------------------------------------------------------


def test_valid_post_draft_passes() -> None:
    draft = PostDraft.model_validate(VALID_POST)
    assert draft.tags == ["fog", "lighthouse", "dawn_watch"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"caption": ""}, "caption"),
        ({"caption": "   "}, "caption"),
        ({"caption": "x" * 2201}, "caption"),
        ({"tags": []}, "tags"),
        ({"tags": [f"t{i}" for i in range(11)]}, "tags"),
        ({"tags": ["#fog"]}, "tags.0"),
        ({"tags": ["Fog"]}, "tags.0"),
        ({"tags": ["ok", "sea fog"]}, "tags.1"),
        ({"tags": ["ok", "a" * 33]}, "tags.1"),
        ({"tags": ["ok", "Туман"]}, "tags.1"),
        ({"tags": ["ok", "ночной рынок"]}, "tags.1"),
        ({"tags": ["fog", "fog"]}, "tags"),
        ({"image_prompt": "short"}, "image_prompt"),
        ({"image_prompt": "x" * 1001}, "image_prompt"),
        ({"mood": "grey"}, "mood"),
    ],
)
def test_post_draft_rules(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PostDraft.model_validate({**VALID_POST, **change})
    assert field in fields_of(caught.value)


def test_post_draft_limits_are_inclusive() -> None:
    draft = PostDraft.model_validate(
        {
            **VALID_POST,
            "caption": "x" * 2200,
            "tags": ["a" * 32, *[f"tag_{i}" for i in range(9)]],
        }
    )
    assert len(draft.caption) == 2200 and len(draft.tags) == 10


def test_tags_of_any_script_within_the_same_limits() -> None:
    tags = ["ночь", "ночной_рынок", "日本", "straße", "2026", "я" * 32]
    draft = PostDraft.model_validate({**VALID_POST, "tags": tags})
    assert draft.tags == tags
    decomposed = "ночь_и\u0306"  # "й" written as "и" + a combining breve
    assert PostDraft.model_validate({**VALID_POST, "tags": [decomposed]}).tags == ["ночь_й"]
    with pytest.raises(ValidationError):
        PostDraft.model_validate({**VALID_POST, "tags": ["я" * 33]})


def test_whitespace_is_trimmed_before_limits() -> None:
    draft = PostDraft.model_validate({**VALID_POST, "caption": "  hello  "})
    assert draft.caption == "hello"


# --- characters ---------------------------------------------------------------------------


def test_display_name_rules() -> None:
    assert CharacterConcept.model_validate(concept("x" * 64)).display_name == "x" * 64
    for bad in ("x" * 65, "", "two\nlines"):
        with pytest.raises(ValidationError) as caught:
            CharacterConcept.model_validate(concept(bad))
        assert fields_of(caught.value) == {"display_name"}


def test_batch_plan_rules() -> None:
    ten = [concept(f"Name {i}") for i in range(10)]
    assert len(CharacterBatchPlan.model_validate({"characters": ten}).characters) == 10
    for characters in ([], [*ten, concept("Eleven")], [concept("Mira"), concept("mira")]):
        with pytest.raises(ValidationError) as caught:
            CharacterBatchPlan.model_validate({"characters": characters})
        assert fields_of(caught.value) == {"characters"}


def test_profile_rules() -> None:
    data = PROFILE.model_dump()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"display_name": "x" * 65}, "display_name"),
        ({"interests": []}, "interests"),
        ({"interests": ["x"] * 9}, "interests"),
        ({"bio": "x" * 301}, "bio"),
        ({"appearance": ""}, "appearance"),
    ]
    for change, field in cases:
        with pytest.raises(ValidationError) as caught:
            CharacterProfile.model_validate({**data, **change})
        assert field in fields_of(caught.value)


def test_world_brief_and_avatar_rules() -> None:
    data = BRIEF.model_dump()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"themes": ["a", "b"]}, "themes"),
        ({"motifs": ["m"] * 13}, "motifs"),
        ({"tone": "x" * 201}, "tone"),
        ({"summary": ""}, "summary"),
    ]
    for change, field in cases:
        with pytest.raises(ValidationError) as caught:
            WorldBrief.model_validate({**data, **change})
        assert field in fields_of(caught.value)
    assert AvatarPrompt(prompt="Portrait of a keeper in fog").prompt
    with pytest.raises(ValidationError):
        AvatarPrompt(prompt="tiny")


def test_schemas_are_frozen() -> None:
    with pytest.raises(ValidationError):
        PROFILE.display_name = "Other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("#Night Market", "night_market"),
        ("  sea-fog!! ", "sea_fog"),
        ("a" * 40, "a" * 32),
        ("###", None),
        ("туман", "туман"),
        ("#Ночной Рынок", "ночной_рынок"),
        ("🌊", None),
        ("Tea_Smugglers_2", "tea_smugglers_2"),
    ],
)
def test_normalize_tag(text: str, tag: str | None) -> None:
    assert normalize_tag(text) == tag


# --- strict JSON schema and reply parsing -------------------------------------------------


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_strict_schema_is_in_the_strict_subset(name: str) -> None:
    schema = strict_json_schema(SCHEMAS[name])
    nodes = _walk(schema)
    for node in nodes:
        assert "$ref" not in node and "$defs" not in node
        assert "minLength" not in node and "maxLength" not in node
        assert "title" not in node and "default" not in node
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert sorted(node["required"]) == sorted(node["properties"])


def test_strict_schema_keeps_limits_in_words() -> None:
    schema = strict_json_schema(PostDraft)
    caption = schema["properties"]["caption"]
    assert "1 to 2200 characters" in caption["description"]
    assert schema["properties"]["tags"]["maxItems"] == 10
    plan = strict_json_schema(CharacterBatchPlan)
    item = plan["properties"]["characters"]["items"]
    assert item["properties"]["display_name"]["type"] == "string"
    assert "at most 64" in item["properties"]["display_name"]["description"]


def test_parse_reply_outcomes() -> None:
    ok = parse_reply(
        PostDraft,
        ChatReply(
            text='Here: {"caption": "c", "tags": ["t"], "image_prompt": "a harbour at dawn"} done'
        ),
    )
    assert isinstance(ok, PostDraft)
    empty = parse_reply(PostDraft, ChatReply(text="  "))
    assert isinstance(empty, Rejection) and "empty" in empty.problems[0]
    listed = parse_reply(PostDraft, ChatReply(text="[1, 2]"))
    assert isinstance(listed, Rejection) and listed.fields == ("(root)",)
