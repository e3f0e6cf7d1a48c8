"""A Russian world and an English world side by side, end to end on the local stack: each
written in its own language (names, bios, brief, captions, tags), image prompts in English,
the language recorded in the brief and shown in its metadata, Cyrillic tags kept by the
platform as they were written."""

from __future__ import annotations

import json
import re
from typing import Any

from dagster import AssetKey, AssetRecordsFilter
from pipeline_helpers import Bed

from generia_pipelines.generation.language import ENGLISH, script_share
from generia_pipelines.generation.schemas import valid_tag

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
