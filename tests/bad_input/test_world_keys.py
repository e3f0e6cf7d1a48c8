"""Bad world keys: refused in the catalog and as partitions, naming the key and the rule.

Dagster itself accepts all of these as dynamic partition keys, so the pipeline must refuse
them: in the worlds file (the world is skipped, the others go on), and when a run gets one
anyway (added by hand in the UI), before anything is generated or created, without retries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_input_helpers import GOOD_ID, GOOD_WORLD, NOT_RETRIED, failure_text, step_retries
from dagster import SensorResult, build_sensor_context
from pipeline_helpers import Bed

from generia_pipelines.automation import new_worlds_sensor
from generia_pipelines.catalog import FileCatalog, WorldsFileError, load_worlds_file
from generia_pipelines.partitions import InvalidWorldKey, world_day_key
from generia_pipelines.resources.catalog import CatalogResource

RULE = "a world key is a UUID or 1-64 lowercase ASCII letters, digits and '-'"
# (key, what the error says about it)
BAD_KEYS = [
    ("", "invalid world key '': it is empty"),
    ("a|b", "invalid world key 'a|b': it contains '|', which Dagster uses to join"),
    ("a,b", "invalid world key 'a,b': it contains ',', which Dagster uses to separate"),
    ("x" * 300, "it is 300 characters long, the limit is 64"),
    (
        "mündchen",
        "invalid world key 'mündchen': it contains the non-ASCII character 'ü' "
        "(LATIN SMALL LETTER U WITH DIAERESIS)",
    ),
]
IDS = ["empty", "pipe", "comma", "300-chars", "unicode"]


def _write(path: Path, worlds: list[dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump({"worlds": worlds}, allow_unicode=True), encoding="utf-8")


def _with_bad_ids(path: Path) -> None:
    bad: list[dict[str, Any]] = [{"id": key, "prompt": "A bad id"} for key, _ in BAD_KEYS]
    _write(path, [GOOD_WORLD, *bad])


def test_every_bad_id_in_the_file_is_named_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "worlds.yaml"
    _with_bad_ids(path)
    with pytest.raises(WorldsFileError) as caught:
        load_worlds_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path} has {len(BAD_KEYS)} problems:")
    for index, (_, reason) in enumerate(BAD_KEYS, start=1):
        assert f"worlds[{index}] (id " in message
        assert reason in message
    assert message.count("field 'id': invalid world key") == len(BAD_KEYS)
    assert RULE in message


async def test_bad_ids_are_skipped_and_the_good_world_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "worlds.yaml"
    _with_bad_ids(path)
    listing = await FileCatalog(path).list_worlds()
    assert listing.ids == [GOOD_ID]
    assert [s.world_id for s in listing.skipped] == [key for key, _ in BAD_KEYS]
    for skipped, (_, reason) in zip(listing.skipped, BAD_KEYS, strict=True):
        assert str(path) in skipped.reason and "field 'id'" in skipped.reason
        assert reason in skipped.reason


def test_the_sensor_adds_only_the_good_world(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENERIA_WORLD_ADDR", raising=False)
    monkeypatch.setenv("GENERIA_BACKFILL_DAYS", "0")
    _with_bad_ids(bed.worlds_file)
    context = build_sensor_context(
        instance=bed.instance,
        resources={"catalog": CatalogResource(worlds_file=str(bed.worlds_file))},
    )
    result = new_worlds_sensor(context)
    assert isinstance(result, SensorResult)
    added = result.dynamic_partitions_requests or []
    assert [r.partition_keys for r in added] == [[GOOD_ID]]
    assert [r.partition_key for r in result.run_requests or []] == [GOOD_ID]


@pytest.mark.parametrize(("key", "reason"), BAD_KEYS, ids=IDS)
def test_a_bad_partition_key_fails_the_run_at_once(bed: Bed, key: str, reason: str) -> None:
    """Added by hand (Dagster accepts it): the run fails in its first step, before any call."""
    result = bed.setup(key, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert reason in text and RULE in text and NOT_RETRIED in text
    assert step_retries(result) == 0
    assert bed.stack.stats.get("character.CreateCharacter").calls == 0
    assert bed.runware.standin is not None and bed.runware.standin.stats.images_generated == 0
    with bed.ledger() as ledger:
        assert ledger.units(GOOD_ID, "characters") == []


def test_the_good_world_runs_beside_the_bad_keys(bed: Bed) -> None:
    _with_bad_ids(bed.worlds_file)
    bed.instance.add_dynamic_partitions("worlds", [key for key, _ in BAD_KEYS])
    assert bed.setup(GOOD_ID).success
    assert bed.day(GOOD_ID, "2026-11-21").success
    assert len(bed.platform(GOOD_ID, "posts")) == GOOD_WORLD["posts_per_day"]


@pytest.mark.parametrize(("key", "reason"), BAD_KEYS, ids=IDS)
def test_a_bad_world_never_becomes_a_world_day_key(key: str, reason: str) -> None:
    with pytest.raises(InvalidWorldKey) as caught:
        world_day_key(key, "2026-11-21")
    assert reason in str(caught.value)
