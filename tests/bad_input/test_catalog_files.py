"""Bad worlds files: every problem named with file, world and field; good worlds go on.

A bad entry only stops its own world (its runs fail at once, naming the problem); a file that
is not a catalog at all (invalid YAML) stops every world, at the first step of a run, before
anything is paid for, and the work already done waits in the ledger until the file is fixed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_input_helpers import (
    DAY,
    GOOD_ID,
    GOOD_WORLD,
    NOT_RETRIED,
    failure_text,
    step_retries,
    steps_started,
)
from pipeline_helpers import Bed

from generia_pipelines.catalog import FileCatalog, WorldsFileError, load_worlds_file

BROKEN = "broken-bay"
# (the bad entry, its field, what the error says); each sits in the file after the good world.
BAD_ENTRIES: list[tuple[dict[str, Any], str, str]] = [
    ({"id": BROKEN}, "prompt", "is missing; every world needs a prompt"),
    ({"prompt": "A bay"}, "id", "is missing"),
    (
        {"id": BROKEN, "prompt": "A bay", "posts": 3},
        "posts",
        "is not a known field (check the spelling)",
    ),
    (
        {"id": BROKEN, "prompt": "A bay", "characters": "many"},
        "characters",
        "input should be a valid integer (got 'many')",
    ),
    (
        {"id": BROKEN, "prompt": ["a", "list"]},
        "prompt",
        "input should be a valid string (got ['a', 'list'])",
    ),
    (
        {"id": 42, "prompt": "A bay"},
        "id",
        'is a number, not a string (quote it in YAML: id: "...")',
    ),
    (
        {"id": BROKEN, "prompt": "A bay", "characters": True},
        "characters",
        "input should be a valid integer (got True)",
    ),
    (
        {"id": BROKEN, "prompt": "A bay", "characters": -3},
        "characters",
        "input should be greater than or equal to 1 (got -3)",
    ),
    (
        {"id": BROKEN, "prompt": "A bay", "posts_per_day": 0},
        "posts_per_day",
        "input should be greater than or equal to 1 (got 0)",
    ),
    (
        {"id": BROKEN, "prompt": "A bay", "characters": 10**30},
        "characters",
        "input should be less than or equal to 40 (got 1000000000000000000000000000000)",
    ),
    (
        {"id": BROKEN, "prompt": "A bay", "posts_per_day": 1_000_000},
        "posts_per_day",
        "input should be less than or equal to 250 (got 1000000)",
    ),
    (
        {"id": BROKEN, "prompt": "A bay", "budget": {"daily": {"images": -1}}},
        "budget.daily.images",
        "input should be greater than or equal to 0 (got -1)",
    ),
]
ENTRY_IDS = [
    "no-prompt",
    "no-id",
    "unknown-field",
    "count-as-word",
    "prompt-as-list",
    "id-as-number",
    "count-as-bool",
    "negative-count",
    "zero-posts",
    "huge-count",
    "huge-posts",
    "negative-budget",
]
INVALID_YAML = "worlds:\n  - id: neon-harbor\n    prompt: [a harbour\n"


def _write(path: Path, worlds: list[dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump({"worlds": worlds}), encoding="utf-8")


@pytest.mark.parametrize(("entry", "field", "says"), BAD_ENTRIES, ids=ENTRY_IDS)
async def test_a_bad_entry_is_named_and_the_good_world_still_listed(
    tmp_path: Path, entry: dict[str, Any], field: str, says: str
) -> None:
    path = tmp_path / "worlds.yaml"
    _write(path, [GOOD_WORLD, entry])
    world = f"worlds[1] (id '{BROKEN}')" if entry.get("id") == BROKEN else "worlds[1]"
    expected = f"{path}, {world}, field '{field}': {says}"
    with pytest.raises(WorldsFileError) as caught:  # the strict reader lists the problem
        load_worlds_file(path)
    assert str(caught.value) == expected
    listing = await FileCatalog(path).list_worlds()  # the pipeline skips only that world
    assert listing.ids == [GOOD_ID]
    [skipped] = listing.skipped
    assert skipped.reason == expected


async def test_duplicate_ids_make_that_world_unusable_but_not_the_others(tmp_path: Path) -> None:
    path = tmp_path / "worlds.yaml"
    twins = [{"id": BROKEN, "prompt": "A bay"}, {"id": BROKEN, "prompt": "Another bay"}]
    _write(path, [GOOD_WORLD, *twins])
    expected = (
        f"{path}, worlds[2] (id '{BROKEN}'), field 'id': "
        f"duplicate id '{BROKEN}', already used by worlds[1]"
    )
    with pytest.raises(WorldsFileError) as caught:
        load_worlds_file(path)
    assert str(caught.value) == expected
    catalog = FileCatalog(path)
    assert (await catalog.list_worlds()).ids == [GOOD_ID]
    with pytest.raises(WorldsFileError) as asked:  # which of the two was meant is unknown
        await catalog.get_world(BROKEN)
    assert str(asked.value) == expected
    assert (await catalog.get_world(GOOD_ID)).characters == GOOD_WORLD["characters"]


def test_invalid_yaml_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "worlds.yaml"
    path.write_text(INVALID_YAML, encoding="utf-8")
    with pytest.raises(WorldsFileError) as caught:
        load_worlds_file(path)
    assert str(caught.value) == (
        f"{path}: invalid YAML at line 4, column 1: expected ',' or ']', but got '<stream end>'"
    )


def test_a_bad_world_fails_its_own_run_at_once_while_the_good_one_runs(bed: Bed) -> None:
    _write(bed.worlds_file, [GOOD_WORLD, {"id": BROKEN, "prompt": "A bay", "characters": -3}])
    bed.instance.add_dynamic_partitions("worlds", [BROKEN])
    broken = bed.setup(BROKEN, raise_on_error=False)
    assert not broken.success
    text = failure_text(broken)
    assert (
        f"WorldsFileError: {bed.worlds_file}, worlds[1] (id '{BROKEN}'), field 'characters': "
        "input should be greater than or equal to 1 (got -3)"
    ) in text
    assert NOT_RETRIED in text and step_retries(broken) == 0
    assert bed.runware.standin is not None and bed.runware.standin.stats.images_generated == 0

    assert bed.setup(GOOD_ID).success
    assert bed.day(GOOD_ID, DAY).success
    assert len(bed.platform(GOOD_ID, "posts")) == GOOD_WORLD["posts_per_day"]
    assert bed.platform(BROKEN, "characters") == []


def test_invalid_yaml_stops_runs_before_paying_and_loses_nothing(bed: Bed) -> None:
    assert bed.setup(GOOD_ID).success
    with bed.ledger() as ledger:
        setup_units = ledger.units(GOOD_ID, "characters") + ledger.units(GOOD_ID, "avatars")
    assert bed.runware.standin is not None
    paid = bed.runware.standin.stats.images_generated

    good_file = bed.worlds_file.read_text(encoding="utf-8")
    bed.worlds_file.write_text(INVALID_YAML, encoding="utf-8")
    result = bed.day(GOOD_ID, DAY, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert f"WorldsFileError: {bed.worlds_file}: invalid YAML at line 4, column 1" in text
    assert NOT_RETRIED in text and step_retries(result) == 0
    assert steps_started(result) == ["day_posts"]  # stopped before any post was drafted
    assert bed.runware.standin.stats.images_generated == paid
    with bed.ledger() as ledger:
        assert ledger.units(GOOD_ID, "posts", DAY) == []
        kept = ledger.units(GOOD_ID, "characters") + ledger.units(GOOD_ID, "avatars")
    assert kept == setup_units  # nothing already done was lost or redone

    bed.worlds_file.write_text(good_file, encoding="utf-8")
    assert bed.day(GOOD_ID, DAY).success
    assert len(bed.platform(GOOD_ID, "posts")) == GOOD_WORLD["posts_per_day"]
    characters = GOOD_WORLD["characters"]
    assert bed.runware.standin.stats.images_generated == characters + GOOD_WORLD["posts_per_day"]
