"""A world's language through the model backends: asked for in the prompts and the schema,
checked in every reply (by script), and re-asked when a model answers in another one.

Driven against the local OpenAI-compatible stand-in (which can answer in the wrong language
on purpose) and against the scripted chat server (which answers what a test tells it to).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from text_helpers import ChatServer, as_json, completion

from generia_pipelines.clients.text import InvalidOutputError, OpenAICompatibleGenerator, TextTask
from generia_pipelines.generation.language import RUSSIAN, script_share
from generia_pipelines.generation.prompts import WorldInfo, render_post_draft, render_world_brief
from generia_pipelines.generation.schemas import CharacterProfile, PostDraft, WorldBrief
from generia_pipelines.local.text_standin import DEFAULT_API_KEY, TextStandin, start

pytestmark = pytest.mark.timeout(60)

KANALY = WorldInfo(
    name="Город каналов",
    description="",
    prompt="Город каналов, где стеклодувы и ночные паромщики делят одни и те же мосты",
)
BRIEF = WorldBrief(
    summary="Город на воде, где у каждого моста своя история.",
    setting="Каналы, мастерские стеклодувов, ночные паромы и узкие набережные.",
    tone="тёплый и наблюдательный",
    visual_style="35mm film photography, teal and amber, lantern glow",
    themes=["каналы", "стекло", "ночные переправы"],
    motifs=["мосты", "паромы", "стеклянные фонари"],
)
PROFILE = CharacterProfile(
    display_name="Мира Соколова",
    bio="Паромщица. Знаю каждый мост по голосу.",
    personality="Упрямая, терпеливая, втайне сентиментальная.",
    interests=["мосты", "ночные прогулки"],
    speaking_style="Короткие простые фразы.",
    appearance="Woman in her forties, dark braid, oilskin coat, a brass lantern.",
)
RUSSIAN_POST: dict[str, Any] = {
    "caption": "Ночью туман лёг на каналы, и паром шёл почти на ощупь.",
    "tags": ["туман", "ночной_паром"],
    "image_prompt": "A small ferry crossing a foggy canal at night, lantern light",
}
ENGLISH_POST: dict[str, Any] = {
    "caption": "The fog lay on the canals tonight; the ferry crossed almost blind.",
    "tags": ["fog", "night_ferry"],
    "image_prompt": "A small ferry crossing a foggy canal at night, lantern light",
}


def post_task(world: WorldInfo = KANALY, unit: str = "posts/kanaly/2026-11-24/0") -> TextTask:
    prompt = render_post_draft(world, BRIEF, PROFILE, [], "2026-11-24")
    return TextTask(PostDraft, prompt, world_id="kanaly", unit_key=unit)


def make(url: str, **options: Any) -> OpenAICompatibleGenerator:
    return OpenAICompatibleGenerator(
        base_url=url, api_key=DEFAULT_API_KEY, model="m", backoff_initial_s=0.01, **options
    )


@pytest.fixture
async def standin() -> AsyncIterator[TextStandin]:
    server = await start(seed=3)
    try:
        yield server
    finally:
        await server.stop()


async def test_the_prompt_and_the_schema_ask_for_the_worlds_language(
    chat_server: ChatServer,
) -> None:
    chat_server.reply(completion(as_json(RUSSIAN_POST)))
    async with make(chat_server.base_url) as generator:
        await generator.generate(post_task())
    (request,) = chat_server.requests
    system, user = (m["content"] for m in request["messages"])
    assert "Write every text in Russian" in system
    assert "World language: Russian (ru)" in user and "tags in Russian" in user
    schema = request["response_format"]["json_schema"]["schema"]["properties"]
    assert "; in Russian" in schema["caption"]["description"]
    assert "; in Russian" in schema["tags"]["description"]
    assert "; in English, for the image model" in schema["image_prompt"]["description"]


async def test_a_reply_in_the_wrong_language_is_reasked(chat_server: ChatServer) -> None:
    chat_server.reply(completion(as_json(ENGLISH_POST)), completion(as_json(RUSSIAN_POST)))
    async with make(chat_server.base_url) as generator:
        result = await generator.generate(post_task())
    assert result.value.caption == RUSSIAN_POST["caption"]
    assert result.usage.attempts == 2
    reask = chat_server.requests[1]["messages"][-1]["content"]
    assert "caption: must be written in Russian" in reask
    assert "tags: must be written in Russian" in reask


async def test_an_image_prompt_in_the_worlds_language_is_reasked(chat_server: ChatServer) -> None:
    russian_picture = {**RUSSIAN_POST, "image_prompt": "Маленький паром ночью в тумане на канале"}
    chat_server.reply(completion(as_json(russian_picture)), completion(as_json(RUSSIAN_POST)))
    async with make(chat_server.base_url) as generator:
        result = await generator.generate(post_task())
    assert result.usage.attempts == 2
    reask = chat_server.requests[1]["messages"][-1]["content"]
    assert "image_prompt: must be written in English (image models read English best)" in reask


async def test_an_english_world_is_held_to_english(chat_server: ChatServer) -> None:
    harbour = WorldInfo(name="Neon Harbor", description="", prompt="A rain-soaked port city")
    assert harbour.language == "en"  # detected from its words
    chat_server.reply(completion(as_json(RUSSIAN_POST)))
    async with make(chat_server.base_url, max_reasks=1) as generator:
        with pytest.raises(InvalidOutputError, match="caption: must be written in English"):
            await generator.generate(post_task(harbour))
    assert len(chat_server.requests) == 2


async def test_the_worlds_own_latin_name_is_allowed_in_russian(chat_server: ChatServer) -> None:
    harbour = WorldInfo(
        name="Neon Harbor", description="", prompt="Неоновая гавань под дождём", language="ru"
    )
    caption = "Neon Harbor ночью: дождь, неон и запах лапши у причала."
    chat_server.reply(completion(as_json({**RUSSIAN_POST, "caption": caption})))
    async with make(chat_server.base_url, max_reasks=0) as generator:
        result = await generator.generate(post_task(harbour))
    assert result.value.caption == caption


async def test_the_standin_answering_in_english_is_reasked_until_it_gives_up(
    standin: TextStandin,
) -> None:
    standin.faults.set(wrong_language_rate=1.0)
    async with make(standin.url) as generator:
        with pytest.raises(InvalidOutputError) as caught:
            await generator.generate(post_task())
    assert standin.stats.snapshot().injected["wrong_language"] == 3  # the ask and two re-asks
    assert caught.value.attempts == 3
    assert "must be written in Russian" in str(caught.value)


async def test_the_standin_slipping_into_english_is_corrected_by_the_reask(
    standin: TextStandin,
) -> None:
    standin.faults.set(wrong_language_rate=0.5)
    async with make(standin.url, max_reasks=4) as generator:
        results = [
            await generator.generate(post_task(unit=f"posts/kanaly/2026-11-24/{slot}"))
            for slot in range(8)
        ]
        brief = await generator.generate(
            TextTask(WorldBrief, render_world_brief(KANALY), "kanaly", "briefs/kanaly")
        )
    assert standin.stats.snapshot().injected["wrong_language"] >= 1
    assert sum(r.usage.reasks for r in results) >= 1
    for result in [*results, brief]:
        for text in (
            [result.value.caption, *result.value.tags]
            if isinstance(result.value, PostDraft)
            else [result.value.summary, result.value.setting, *result.value.themes]
        ):
            share = script_share(text, RUSSIAN)
            assert share is not None and share >= 0.75, text
