"""The OpenAI-compatible text stand-in: themed, deterministic answers and injected faults,
driven through the real ``openai`` backend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from generia_pipelines.clients.text.base import TextTask
from generia_pipelines.clients.text.errors import InvalidOutputError
from generia_pipelines.clients.text.openai_compat import OpenAICompatibleGenerator
from generia_pipelines.generation.prompts import (
    WorldInfo,
    render_avatar_prompt,
    render_character_batch,
    render_character_detail,
    render_post_draft,
    render_world_brief,
)
from generia_pipelines.generation.schemas import (
    AvatarPrompt,
    CharacterBatchPlan,
    CharacterProfile,
    PostDraft,
    WorldBrief,
)
from generia_pipelines.local.stack import StackConfig, ThreadedStack
from generia_pipelines.local.text_standin import (
    DEFAULT_API_KEY,
    TextComponent,
    TextStandin,
    prompt_inputs,
    start,
)

pytestmark = pytest.mark.timeout(30)

WORLD = WorldInfo(
    name="Neon Harbor",
    description="A port",
    prompt="A rain-soaked port city where smugglers and poets share the same bars",
)


@pytest.fixture
async def standin() -> AsyncIterator[TextStandin]:
    server = await start(seed=1)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def generator(standin: TextStandin) -> AsyncIterator[OpenAICompatibleGenerator]:
    made = OpenAICompatibleGenerator(
        base_url=standin.url, api_key=DEFAULT_API_KEY, model="m", backoff_initial_s=0.01
    )
    try:
        yield made
    finally:
        await made.aclose()


async def test_answers_every_schema_in_the_worlds_words(
    generator: OpenAICompatibleGenerator,
) -> None:
    brief = (
        await generator.generate(TextTask(WorldBrief, render_world_brief(WORLD), "w", "b"))
    ).value
    assert "Neon Harbor" in brief.summary
    plan = await generator.generate(
        TextTask(CharacterBatchPlan, render_character_batch(WORLD, brief, 3), "w", "c/0")
    )
    first = plan.value.characters
    assert len(first) == 3
    more = await generator.generate(
        TextTask(CharacterBatchPlan, render_character_batch(WORLD, brief, 3, first), "w", "c/3")
    )
    assert not {c.display_name for c in first} & {c.display_name for c in more.value.characters}
    profile = (
        await generator.generate(
            TextTask(CharacterProfile, render_character_detail(WORLD, brief, first[0]), "w", "c/0")
        )
    ).value
    assert profile.display_name == first[0].display_name  # kept as planned
    avatar = await generator.generate(
        TextTask(AvatarPrompt, render_avatar_prompt(WORLD, brief, profile), "w", "a")
    )
    assert profile.appearance.split(",")[0].lower() in avatar.value.prompt.lower()
    task = TextTask(PostDraft, render_post_draft(WORLD, brief, profile, [], "2026-11-20"), "w", "p")
    draft = await generator.generate(task)
    assert draft.value == (await generator.generate(task)).value  # deterministic per unit


def test_prompt_inputs_are_read_back_from_the_rendered_prompt() -> None:
    brief = WorldBrief(
        summary="s",
        setting="t",
        tone="calm",
        visual_style="ink",
        themes=["a", "b", "c"],
        motifs=["x", "y", "z"],
    )
    profile = CharacterProfile(
        display_name="Ada Holm",
        bio="Glassblower.",
        personality="Shy.",
        interests=["neon", "birds"],
        speaking_style="terse",
        appearance="tall, red scarf",
    )
    inputs = prompt_inputs(
        render_post_draft(WORLD, brief, profile, ["old news"], "2026-11-20").user
    )
    assert inputs.world == WORLD
    assert inputs.brief == brief
    assert inputs.profile == profile
    assert inputs.recent_posts == ("old news",)
    assert inputs.day == "2026-11-20"


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ("invalid_json_rate", "not valid JSON"),
        ("schema_violation_rate", "Extra inputs are not permitted"),
        ("truncated_rate", "finish_reason=length"),
        ("wrong_language_rate", "summary: must be written in English"),
    ],
)
async def test_bad_replies_are_re_asked_then_refused(
    standin: TextStandin, generator: OpenAICompatibleGenerator, fault: str, problem: str
) -> None:
    standin.faults.set(**{fault: 1.0})
    with pytest.raises(InvalidOutputError, match=problem):
        await generator.generate(TextTask(WorldBrief, render_world_brief(WORLD), "w", "b"))
    assert standin.stats.snapshot().injected[fault.removesuffix("_rate")] == 3


async def test_http_errors_are_429_or_500_and_retried(
    standin: TextStandin, generator: OpenAICompatibleGenerator
) -> None:
    standin.faults.set(error_rate=0.5)
    for index in range(6):
        await generator.generate(TextTask(WorldBrief, render_world_brief(WORLD), "w", f"b{index}"))
    injected = standin.stats.snapshot().injected
    assert injected["http_429"] + injected["http_500"] > 0


async def test_wrong_key_and_bad_requests_are_refused(standin: TextStandin) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        url = f"{standin.url}/chat/completions"
        wrong = await http.post(url, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        bad = await http.post(
            url,
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
        )
        assert bad.status_code == 400 and "json_schema" in json.dumps(bad.json())
    assert dict(standin.stats.snapshot().rejected) == {"unauthorized": 1, "bad_request": 1}


def test_component_points_the_openai_backend_at_the_standin(tmp_path: Path) -> None:
    text = TextComponent()
    with ThreadedStack(StackConfig(data_dir=tmp_path), [text]) as stack:
        env = stack.env
        assert env["GENERIA_TEXT_BACKEND"] == "openai"
        assert env["GENERIA_TEXT_API_KEY"] == DEFAULT_API_KEY
        models = httpx.get(f"{env['GENERIA_TEXT_BASE_URL']}/models", timeout=5)
        assert models.json()["data"][0]["id"] == env["GENERIA_TEXT_MODEL"]
    assert text.standin is None
