"""Bad world languages: an unsupported or unknown language, or a world whose language cannot
be told, is refused at catalog load, naming the world and listing the supported languages.

The World service's worlds carry their language in ``params`` (``{"language": "ru"}``); a
bad one skips the world like any other unusable world, before any text is written for it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_input_helpers import GOOD_ID, GOOD_WORLD, NOT_RETRIED, failure_text, step_retries
from dagster import materialize
from pipeline_helpers import SETUP, Bed

from generia_pipelines.catalog import FileCatalog, WorldsFileError, load_worlds_file
from generia_pipelines.catalog_service import ServiceCatalog
from generia_pipelines.clients.grpc_base import ChannelSettings
from generia_pipelines.clients.platform import WorldClient
from generia_pipelines.resources.grpc import WorldResource

BROKEN = "broken-bay"
SUPPORTED = "supported: ru (Russian), en (English)"
BAD_LANGUAGES: list[tuple[dict[str, Any], str]] = [
    (
        {"language": "fr"},
        f"'fr' (French) is not a supported language; {SUPPORTED}",
    ),
    (
        {"language": "Italian"},
        f"'Italian' (Italian) is not a supported language; {SUPPORTED}",
    ),
    (
        {"language": "klingon"},
        f"'klingon' is not a language code or name; {SUPPORTED}",
    ),
    ({"language": 5}, "input should be a valid string (got 5)"),
    (
        {"name": "港湾", "prompt": "海港城市，渔船与灯塔"},
        "is not set, and the world's name, prompt and description do not tell it (no word of "
        "a supported language); set it to one of ru (Russian), en (English)",
    ),
]
IDS = ["unsupported-code", "unsupported-name", "unknown", "number", "undetectable"]


def _write(path: Path, worlds: list[dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump({"worlds": worlds}, allow_unicode=True), encoding="utf-8")


@pytest.mark.parametrize(("change", "says"), BAD_LANGUAGES, ids=IDS)
async def test_a_bad_language_names_the_world_and_the_supported_ones(
    tmp_path: Path, change: dict[str, Any], says: str
) -> None:
    path = tmp_path / "worlds.yaml"
    _write(path, [GOOD_WORLD, {"id": BROKEN, "prompt": "A bay", **change}])
    expected = f"{path}, worlds[1] (id '{BROKEN}'), field 'language': {says}"
    with pytest.raises(WorldsFileError) as caught:
        load_worlds_file(path)
    assert str(caught.value) == expected
    listing = await FileCatalog(path).list_worlds()  # the other worlds go on
    assert listing.ids == [GOOD_ID]
    assert [s.reason for s in listing.skipped] == [expected]


@pytest.mark.parametrize("given", ["ru", "RU", "ru-RU", "Russian", "русский"])
def test_a_language_may_be_a_code_or_a_name(tmp_path: Path, given: str) -> None:
    path = tmp_path / "worlds.yaml"
    _write(path, [{"id": "kanaly", "prompt": "A city of canals", "language": given}])
    [world] = load_worlds_file(path)
    assert world.language == "ru"  # the catalog wins over the English prompt


def test_a_run_of_a_world_with_a_bad_language_fails_before_any_text(bed: Bed) -> None:
    _write(bed.worlds_file, [GOOD_WORLD, {"id": BROKEN, "prompt": "A bay", "language": "fr"}])
    bed.instance.add_dynamic_partitions("worlds", [BROKEN])
    result = bed.setup(BROKEN, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert (
        f"WorldsFileError: {bed.worlds_file}, worlds[1] (id '{BROKEN}'), field 'language': "
        f"'fr' (French) is not a supported language; {SUPPORTED}"
    ) in text
    assert NOT_RETRIED in text and step_retries(result) == 0
    with bed.ledger() as ledger:
        assert ledger.get(f"briefs/{BROKEN}") is None


async def _create(address: str, name: str, params: dict[str, Any]) -> str:
    async with WorldClient(ChannelSettings(address)) as client:
        made = await client.create_world(
            name=name, prompt="A harbour of lantern boats", idempotency_key=name
        )
        await client.update_world_params(made.id, params, users_count=2, posts_count=3)
        return made.id


def test_the_world_services_params_name_the_language(bed: Bed) -> None:
    address = bed.stack.env["GENERIA_WORLD_ADDR"]
    russian = asyncio.run(_create(address, "Russian Bay", {"language": "ru"}))
    french = asyncio.run(_create(address, "French Bay", {"language": "fr"}))
    detected = asyncio.run(_create(address, "Plain Bay", {}))

    async def listing() -> Any:
        async with WorldClient(ChannelSettings(address)) as client:
            return await ServiceCatalog(client).list_worlds()

    found = asyncio.run(listing())
    languages = {world.id: world.language for world in found.worlds}
    assert languages == {russian: "ru", detected: "en"}
    skipped = {s.world_id: s.reason for s in found.skipped}
    assert skipped == {
        french: f"params.language: 'fr' (French) is not a supported language; {SUPPORTED}"
    }

    bed.instance.add_dynamic_partitions("worlds", [french])
    refused = materialize(
        SETUP,
        partition_key=french,
        resources=bed.resources(world=WorldResource(address=address)),
        instance=bed.instance,
        raise_on_error=False,
    )
    assert not refused.success
    assert (
        f"UnusableWorld: world '{french}' cannot be populated: params.language: 'fr' (French) "
        f"is not a supported language; {SUPPORTED}"
    ) in failure_text(refused)
