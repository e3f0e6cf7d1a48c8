"""The offline backend: deterministic, varied, themed by the world, always schema-valid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel
from text_helpers import BRIEF, PROFILE, WORLD, post_task

from generia_pipelines.clients.records import World
from generia_pipelines.clients.text import LocalTextGenerator, TextGenerationError, TextTask
from generia_pipelines.generation.morphology import parses
from generia_pipelines.generation.offline_en import keywords
from generia_pipelines.generation.prompts import (
    render_avatar_prompt,
    render_character_batch,
    render_character_detail,
    render_post_draft,
    render_world_brief,
)
from generia_pipelines.generation.schemas import (
    AvatarPrompt,
    CharacterBatchPlan,
    CharacterConcept,
    CharacterProfile,
    PostDraft,
    WorldBrief,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Feed:
    brief: WorldBrief
    characters: list[CharacterProfile]
    avatars: list[AvatarPrompt]
    posts: list[PostDraft]


async def populate(world: World, characters: int = 25, posts: int = 150) -> Feed:
    """What the world assets do, in miniature: brief, cast in batches of 10, avatars, posts."""
    generator = LocalTextGenerator()
    brief = (
        await generator.generate(
            TextTask(WorldBrief, render_world_brief(world), world.id, f"brief/{world.id}")
        )
    ).value
    concepts: list[CharacterConcept] = []
    batch = 0
    while len(concepts) < characters:
        count = min(10, characters - len(concepts))
        prompt = render_character_batch(world, brief, count, concepts)
        task = TextTask(CharacterBatchPlan, prompt, world.id, f"plan/{world.id}/{batch}")
        plan = (await generator.generate(task)).value
        assert len(plan.characters) == count
        concepts.extend(plan.characters)
        batch += 1
    profiles: list[CharacterProfile] = []
    avatars: list[AvatarPrompt] = []
    for slot, concept in enumerate(concepts):
        key = f"characters/{world.id}/{slot}"
        detail = render_character_detail(world, brief, concept)
        profile = (
            await generator.generate(TextTask(CharacterProfile, detail, world.id, key))
        ).value
        profiles.append(profile)
        avatar = render_avatar_prompt(world, brief, profile)
        avatars.append(
            (await generator.generate(TextTask(AvatarPrompt, avatar, world.id, f"av/{slot}"))).value
        )
    history: dict[str, list[str]] = {p.display_name: [] for p in profiles}
    drafts: list[PostDraft] = []
    for n in range(posts):
        day = f"2026-11-{1 + n // len(profiles):02d}"
        profile = profiles[n % len(profiles)]
        recent = history[profile.display_name][::-1]
        prompt = render_post_draft(world, brief, profile, recent, day)
        key = f"posts/{world.id}/{day}/{n % len(profiles)}"
        draft = (await generator.generate(TextTask(PostDraft, prompt, world.id, key))).value
        history[profile.display_name].append(draft.caption)
        drafts.append(draft)
    return Feed(brief, profiles, avatars, drafts)


async def test_a_world_of_25_characters_and_150_posts_is_varied_and_themed() -> None:
    feed = await populate(WORLD)

    names = [c.display_name.casefold() for c in feed.characters]
    assert len(set(names)) == 25
    captions = [p.caption for p in feed.posts]
    assert len(set(captions)) == 150
    assert len({p.image_prompt for p in feed.posts}) == 150
    assert len({a.prompt for a in feed.avatars}) == 25

    world_words = set(keywords([WORLD.prompt, WORLD.description, WORLD.name]))
    assert {"steampunk", "lighthouses", "smugglers"} <= world_words
    for post in feed.posts:
        assert world_words & set(keywords([post.caption])), post.caption
        assert world_words & set(keywords([post.image_prompt])), post.image_prompt
    assert world_words & set(keywords([feed.brief.summary, feed.brief.setting]))
    assert any(tag in world_words for post in feed.posts for tag in post.tags)
    # The brief's visual style reaches every image prompt, so a feed looks like one world.
    assert all(feed.brief.visual_style in p.image_prompt for p in feed.posts)


async def test_same_inputs_give_the_same_output_byte_for_byte() -> None:
    first, second = LocalTextGenerator(), LocalTextGenerator()
    a = await first.generate(post_task())
    b = await second.generate(post_task())
    assert a.raw == b.raw
    assert a.value == b.value
    assert a.usage.cost_usd == 0.0 and a.usage.requests == 0


async def test_unit_world_and_seed_change_the_output() -> None:
    generator = LocalTextGenerator()
    base = (await generator.generate(post_task("posts/w/2026-11-24/0"))).raw
    other_unit = (await generator.generate(post_task("posts/w/2026-11-24/1"))).raw
    task = post_task("posts/w/2026-11-24/0")
    other_world = TextTask(PostDraft, task.prompt, "another-world", task.unit_key)
    explicit_seed = TextTask(PostDraft, task.prompt, task.world_id, task.unit_key, seed=7)
    outputs = {
        base,
        other_unit,
        (await generator.generate(other_world)).raw,
        (await generator.generate(explicit_seed)).raw,
    }
    assert len(outputs) == 4


def test_output_does_not_depend_on_the_process() -> None:
    """Hash randomisation must not leak in: two interpreters with different seeds agree."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.path.insert(0, sys.argv[1])
        from text_helpers import post_task
        from generia_pipelines.clients.text import LocalTextGenerator
        from test_text_local import populate, WORLD

        async def main():
            feed = await populate(WORLD, characters=12, posts=12)
            print(feed.brief.model_dump_json())
            for c in feed.characters:
                print(c.model_dump_json())
            for p in feed.posts:
                print(p.model_dump_json())
            print((await LocalTextGenerator().generate(post_task())).raw)

        asyncio.run(main())
        """
    )
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", script, str(Path(__file__).parent)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") == 1 + 12 + 12 + 1


@pytest.mark.parametrize(
    "world",
    [
        World(id="empty", name="", description="", prompt=""),
        World(
            id="ru",
            name="Туманная гавань",
            description="Рыбацкий посёлок, где маяки разговаривают по ночам.",
            prompt="Стимпанк, латунные маяки, угри, контрабандисты чая и вечный туман.",
        ),
        World(id="long", name="L" * 200, description="word " * 2000, prompt="x" * 5000),
        World(id="sym", name="{name}", description="{kw} }{ 100% #tags", prompt="a {b} c"),
    ],
    ids=["empty", "russian", "huge", "braces"],
)
async def test_every_schema_is_valid_for_odd_worlds(world: World) -> None:
    feed = await populate(world, characters=12, posts=24)
    assert len({c.display_name.casefold() for c in feed.characters}) == 12
    assert len({p.caption for p in feed.posts}) == 24


def lemmas(text: str) -> set[str]:
    """The dictionary forms of the nouns of a Russian text."""
    found = set()
    for word in text.replace(",", " ").replace(".", " ").split():
        readings = parses(word.strip("«»:;!?…()—").lower())
        if readings and readings[0].tag.POS == "NOUN":
            found.add(readings[0].normal_form)
    return found


async def test_russian_world_words_theme_the_posts() -> None:
    world = World(
        id="ru",
        name="Туманная гавань",
        description="Рыбацкий посёлок, где маяки разговаривают по ночам.",
        prompt="Стимпанк, латунные маяки, угри, контрабандисты чая и вечный туман.",
    )
    feed = await populate(world, characters=5, posts=10)
    # The world's nouns come back declined ("у маяков", "о тумане"): compare lemmas.
    world_nouns = lemmas(" ".join([world.prompt, world.description, world.name]))
    assert {"маяк", "угорь", "туман", "гавань"} <= world_nouns
    assert all(world_nouns & lemmas(p.caption) for p in feed.posts)


async def test_a_batch_never_reuses_a_name_from_the_summary() -> None:
    generator = LocalTextGenerator()
    earlier: list[CharacterConcept] = []
    for batch in range(4):  # 40 characters: the platform's maximum
        prompt = render_character_batch(WORLD, BRIEF, 10, earlier)
        task = TextTask(CharacterBatchPlan, prompt, WORLD.id, f"plan/{batch}")
        earlier.extend((await generator.generate(task)).value.characters)
    assert len({c.display_name.casefold() for c in earlier}) == 40


async def test_avoids_repeating_a_recent_caption() -> None:
    generator = LocalTextGenerator()
    first = (await generator.generate(post_task())).value
    prompt = render_post_draft(WORLD, BRIEF, PROFILE, [first.caption], "2026-11-24")
    again = TextTask(PostDraft, prompt, WORLD.id, "posts/lantern-harbour/2026-11-24/0")
    assert (await generator.generate(again)).value.caption != first.caption


async def test_unknown_schema_is_refused_clearly() -> None:
    class Other(BaseModel):
        text: str

    task = TextTask(Other, post_task().prompt, WORLD.id, "x")
    with pytest.raises(TextGenerationError, match="cannot write Other"):
        await LocalTextGenerator().generate(task)


async def test_profile_keeps_the_planned_name() -> None:
    concept = CharacterConcept(display_name="Mira Vale", role="keeper", hook="counts eels")
    prompt = render_character_detail(WORLD, BRIEF, concept)
    result = await LocalTextGenerator().generate(TextTask(CharacterProfile, prompt, WORLD.id, "c"))
    assert result.value.display_name == "Mira Vale"
    assert json.loads(result.raw)["display_name"] == "Mira Vale"
