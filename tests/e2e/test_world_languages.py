"""A Russian world and an English world side by side, end to end on the local stack: each
written in its own language (names, bios, brief, captions, tags), image prompts in English,
the language recorded in the brief and shown in its metadata, Cyrillic tags kept by the
platform as they were written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, materialize
from pipeline_helpers import SETUP, Bed

from generia_pipelines.generation.language import ENGLISH, script_share
from generia_pipelines.generation.schemas import valid_tag
from generia_pipelines.local.runware_standin import RunwareComponent
from generia_pipelines.local.stack import StackConfig, ThreadedStack
from generia_pipelines.local.text_standin import TextComponent
from generia_pipelines.resources.text import TextGenerationResource

DAY = "2026-11-20"
RUSSIAN = {
    "id": "kanaly",
    "name": "Город каналов",
    "prompt": "Город каналов, где стеклодувы и ночные паромщики делят одни и те же мосты",
    "characters": 4,
    "posts_per_day": 6,
}
ENGLISH_WORLD = {
    "id": "neon-harbor",
    "name": "Neon Harbor",
    "prompt": "A rain-soaked port city where smugglers and poets share the same bars",
    "characters": 3,
    "posts_per_day": 4,
}
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_CYRILLIC_WORD = re.compile(r"[А-Яа-яЁё]+")


def _metadata(bed: Bed, asset: str, partition: str) -> dict[str, Any]:
    records = bed.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    assert records and records[0].asset_materialization is not None
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _checks(result: Any) -> dict[str, bool]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def _populate(bed: Bed, world_id: str) -> None:
    assert bed.setup(world_id).success
    day = bed.day(world_id, DAY)
    assert day.success
    assert _checks(day)["captions_and_tags_within_limits"]


def test_a_russian_and_an_english_world_each_in_its_own_language(bed: Bed) -> None:
    bed.write_worlds([RUSSIAN, ENGLISH_WORLD])
    for world in (RUSSIAN, ENGLISH_WORLD):
        _populate(bed, str(world["id"]))

    brief = _metadata(bed, "world_brief", "kanaly")
    assert brief["language"] == "ru (Russian)"
    assert brief["language_source"] == "detected from the name and prompt"
    assert script_share(brief["summary"] + brief["themes"], ENGLISH) == 0
    assert _metadata(bed, "world_brief", "neon-harbor")["language"] == "en (English)"
    with bed.ledger() as ledger:
        stored = ledger.get("briefs/kanaly")
        assert stored is not None and stored.payload is not None
        assert stored.payload["language"] == "ru"

    people = bed.platform("kanaly", "characters")
    posts = bed.platform("kanaly", "posts")
    assert len(people) == 4 and len(posts) == 6
    for person in people:
        bio = json.loads(person["meta"])["bio"]
        for text in (person["display_name"], bio):
            assert not _LATIN_WORD.findall(text), text
            assert _CYRILLIC_WORD.search(text), text
    for post in posts:
        assert not _LATIN_WORD.findall(post["caption"]), post["caption"]
        assert post["tags"] and all(valid_tag(t) and _CYRILLIC_WORD.match(t) for t in post["tags"])

    with bed.ledger() as ledger:
        drafts = [u.payload["value"] for u in ledger.units("kanaly", "posts", DAY) if u.payload]
    assert len(drafts) == 6
    # The platform keeps Cyrillic tags exactly as the pipeline wrote them.
    assert sorted(tuple(d["tags"]) for d in drafts) == sorted(tuple(p["tags"]) for p in posts)
    for draft in drafts:  # image prompts stay English: image models read English best
        assert script_share(draft["image_prompt"], ENGLISH) == 1.0, draft["image_prompt"]

    for post in bed.platform("neon-harbor", "posts"):
        assert not _CYRILLIC_WORD.findall(post["caption"]), post["caption"]
        assert all(re.fullmatch(r"[a-z0-9_]+", t) for t in post["tags"])
    for person in bed.platform("neon-harbor", "characters"):
        assert not _CYRILLIC_WORD.findall(json.loads(person["meta"])["bio"])


def test_a_language_set_in_the_catalog_rewrites_a_brief_written_in_another(bed: Bed) -> None:
    """An English world's brief stays when the catalog confirms English, and is written
    anew, in Russian, when the catalog says the world is Russian."""
    world = {**ENGLISH_WORLD, "characters": 1, "posts_per_day": 1}
    bed.write_worlds([world])
    assert bed.setup("neon-harbor").success
    first = _metadata(bed, "world_brief", "neon-harbor")

    bed.write_worlds([{**world, "language": "en"}])
    assert bed.setup("neon-harbor").success
    confirmed = _metadata(bed, "world_brief", "neon-harbor")
    assert confirmed["outcome"] == "reused" and confirmed["language_source"] == "the catalog"

    bed.write_worlds([{**world, "language": "ru"}])
    assert bed.setup("neon-harbor").success
    again = _metadata(bed, "world_brief", "neon-harbor")
    assert again["outcome"] == "regenerated" and again["language"] == "ru (Russian)"
    assert "or its language" in again["regenerated_because"]
    assert again["summary"] != first["summary"] and _CYRILLIC_WORD.search(again["summary"])


def test_a_model_slipping_into_english_is_reasked_and_the_world_stays_russian(
    tmp_path: Path,
) -> None:
    """The whole pipeline on the ``openai`` backend against the text stand-in, which answers
    every first ask in English: each is re-asked, and what reaches the platform is Russian."""
    runware, text = RunwareComponent(), TextComponent(seed=5)
    stack = ThreadedStack(StackConfig(data_dir=tmp_path / "stack"), [runware, text]).start()
    try:
        with DagsterInstance.ephemeral() as instance:
            ledger = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
            bed = Bed(stack, runware, tmp_path / "worlds.yaml", ledger, instance)
            bed.write_worlds([{**RUSSIAN, "characters": 3, "posts_per_day": 4}])
            assert text.standin is not None
            text.standin.faults.set(wrong_language_first_rate=1.0)
            model = TextGenerationResource(
                backend="openai",
                base_url=stack.env["GENERIA_TEXT_BASE_URL"],
                api_key=stack.env["GENERIA_TEXT_API_KEY"],
                model=stack.env["GENERIA_TEXT_MODEL"],
                max_reasks=1,
            )
            resources = bed.resources(text=model)
            instance.add_dynamic_partitions("worlds", ["kanaly"])
            setup = materialize(
                SETUP, partition_key="kanaly", resources=resources, instance=instance
            )
            assert setup.success
            assert bed.day("kanaly", DAY, resources=resources).success
            stats = text.standin.stats.snapshot()
            # Brief, plan, 3 profiles, 3 avatar prompts, 4 posts: each first answer slipped.
            # All were re-asked but the avatar prompts, which are English in every world.
            assert stats.injected["wrong_language"] == 12 and stats.answered == 12 + 9
            assert stats.by_schema["AvatarPrompt"] == 3 and stats.by_schema["PostDraft"] == 8
            people, posts = bed.platform("kanaly", "characters"), bed.platform("kanaly", "posts")
            assert len(people) == 3 and len(posts) == 4
            bios = [json.loads(person["meta"])["bio"] for person in people]
            for written in [*bios, *(post["caption"] for post in posts)]:
                assert not _LATIN_WORD.findall(written), written
    finally:
        stack.stop()
