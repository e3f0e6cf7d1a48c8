"""The worlds catalog: the YAML file's errors name file, world and field; the service mapping."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from generia_pipelines.budget import Budget
from generia_pipelines.catalog import (
    DEFAULT_CHARACTERS,
    DEFAULT_POSTS_PER_DAY,
    CatalogListing,
    FileCatalog,
    UnknownWorld,
    UnusableWorld,
    WorldCatalog,
    WorldsFileError,
    WorldSpec,
    default_worlds_file,
    load_worlds_file,
)
from generia_pipelines.catalog_service import ServiceCatalog, map_world
from generia_pipelines.clients.records import World
from generia_pipelines.partitions import InvalidWorldKey

EXAMPLE = """\
worlds:
  - id: neon-harbor
    name: Neon Harbor
    prompt: A rain-soaked port city where smugglers and poets share the same bars
    characters: 8
    posts_per_day: 12
"""


def write(tmp_path: Path, text: str, name: str = "worlds.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(path: Path) -> WorldsFileError:
    with pytest.raises(WorldsFileError) as caught:
        load_worlds_file(path)
    return caught.value


def test_the_issue_example_loads(tmp_path: Path) -> None:
    [world] = load_worlds_file(write(tmp_path, EXAMPLE))
    assert world == WorldSpec(
        id="neon-harbor",
        name="Neon Harbor",
        prompt="A rain-soaked port city where smugglers and poets share the same bars",
        characters=8,
        posts_per_day=12,
    )
    assert world.description == ""
    assert world.budget is None


def test_defaults_and_name_falling_back_to_id(tmp_path: Path) -> None:
    [world] = load_worlds_file(
        write(tmp_path, "worlds:\n  - id: quiet-moon\n    prompt: '  A silent lunar base  '\n")
    )
    assert world.name == "quiet-moon"
    assert world.prompt == "A silent lunar base"
    assert world.characters == DEFAULT_CHARACTERS == 25
    assert world.posts_per_day == DEFAULT_POSTS_PER_DAY == 10


def test_an_empty_worlds_list_is_an_empty_catalog(tmp_path: Path) -> None:
    assert load_worlds_file(write(tmp_path, "worlds: []\n")) == []


# (file content, world label or None, field or None, message fragment)
FILE_ERRORS = [
    ("", None, None, "the file is empty; expected a mapping with a 'worlds' list"),
    ("- id: a\n", None, None, "the file is a list; expected a mapping"),
    ("worlds: [\n", None, None, "invalid YAML at line 2, column 1"),
    ("worlds:\n  - id: a\n    id: b\n", None, None, "key 'id' appears twice in one mapping"),
    ("world: []\n", None, None, "unknown top-level key 'world'"),
    ("world: []\n", None, "worlds", "missing the 'worlds' list"),
    ("worlds:\n", None, "worlds", "is empty; expected a list of worlds"),
    ("worlds: 3\n", None, "worlds", "is a number; expected a list of worlds"),
    ("worlds:\n  - just a name\n", "worlds[0]", None, "is a string; expected a mapping"),
    ("worlds:\n  - id: a\n", "worlds[0] (id 'a')", "prompt", "is missing; every world needs"),
    ("worlds:\n  - id: a\n    prompt: '   '\n", "worlds[0] (id 'a')", "prompt", "is empty"),
    ("worlds:\n  - id: a\n    prompt: 12\n", "worlds[0] (id 'a')", "prompt", "valid string"),
    ("worlds:\n  - prompt: p\n", "worlds[0]", "id", "is missing"),
    ("worlds:\n  - id: Neon\n    prompt: p\n", "worlds[0] (id 'Neon')", "id", "uppercase"),
    ("worlds:\n  - id: a|b\n    prompt: p\n", "worlds[0] (id 'a|b')", "id", "'|'"),
    ("worlds:\n  - id: 2026-11-01\n    prompt: p\n", "worlds[0]", "id", "is a date"),
    ("worlds:\n  - id: 42\n    prompt: p\n", "worlds[0]", "id", "quote it in YAML"),
    (
        "worlds:\n  - id: a\n    prompt: p\n    characters: '8'\n",
        "worlds[0] (id 'a')",
        "characters",
        "valid integer (got '8')",
    ),
    (
        "worlds:\n  - id: a\n    prompt: p\n    characters: 8.5\n",
        "worlds[0] (id 'a')",
        "characters",
        "valid integer",
    ),
    (
        "worlds:\n  - id: a\n    prompt: p\n    characters: true\n",
        "worlds[0] (id 'a')",
        "characters",
        "valid integer",
    ),
    (
        "worlds:\n  - id: a\n    prompt: p\n    characters: 0\n",
        "worlds[0] (id 'a')",
        "characters",
        "greater than or equal to 1 (got 0)",
    ),
    (
        "worlds:\n  - id: a\n    prompt: p\n    characters: 41\n",
        "worlds[0] (id 'a')",
        "characters",
        "less than or equal to 40 (got 41)",
    ),
    (
        "worlds:\n  - id: a\n    prompt: p\n    posts_per_day: -3\n",
        "worlds[0] (id 'a')",
        "posts_per_day",
        "greater than or equal to 1 (got -3)",
    ),
    (
        "worlds:\n  - id: a\n    prompt: p\n    posts_per_day: 100000\n",
        "worlds[0] (id 'a')",
        "posts_per_day",
        "less than or equal to 250 (got 100000)",
    ),
    (
        "worlds:\n  - id: a\n    prompt: p\n    charaters: 8\n",
        "worlds[0] (id 'a')",
        "charaters",
        "is not a known field",
    ),
    (
        "worlds:\n  - id: a\n    prompt: p\n    budget: {daily: {images: -1}}\n",
        "worlds[0] (id 'a')",
        "budget.daily.images",
        "greater than or equal to 0",
    ),
    (
        "worlds:\n  - id: a\n    prompt: p\n    budget: {weekly: {images: 1}}\n",
        "worlds[0] (id 'a')",
        "budget.weekly",
        "is not a known field",
    ),
    (
        "worlds:\n  - id: a\n    prompt: p\n  - id: b\n    prompt: p\n  - id: a\n    prompt: q\n",
        "worlds[2] (id 'a')",
        "id",
        "duplicate id 'a', already used by worlds[0]",
    ),
]


@pytest.mark.parametrize(("text", "world", "field", "fragment"), FILE_ERRORS)
def test_every_file_error_names_file_world_and_field(
    tmp_path: Path, text: str, world: str | None, field: str | None, fragment: str
) -> None:
    path = write(tmp_path, text)
    error = load_error(path)
    message = str(error)
    assert str(path) in message
    assert fragment in message
    matching = [p for p in error.problems if fragment in p.message]
    assert matching, error.problems
    assert matching[0].world == world
    assert matching[0].field == field
    if world:
        assert world in message
    if field:
        assert f"field {field!r}" in message


def test_missing_file_names_the_file_and_the_variable(tmp_path: Path) -> None:
    message = str(load_error(tmp_path / "absent.yaml"))
    assert "absent.yaml" in message
    assert "no such file" in message
    assert "GENERIA_WORLDS_FILE" in message


def test_a_directory_or_binary_file_is_refused(tmp_path: Path) -> None:
    assert "is a directory" in str(load_error(tmp_path))
    binary = tmp_path / "worlds.yaml"
    binary.write_bytes(b"worlds: \xff\xfe\n")
    assert "not UTF-8" in str(load_error(binary))


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        worlds:
          - id: good
            prompt: fine
          - id: no-prompt
          - id: Bad
            prompt: p
            characters: 99
        """,
    )
    error = load_error(path)
    assert len(error.problems) == 3
    message = str(error)
    assert message.startswith(f"{path} has 3 problems:")
    assert "worlds[1] (id 'no-prompt'), field 'prompt'" in message
    assert "worlds[2] (id 'Bad'), field 'id'" in message
    assert "worlds[2] (id 'Bad'), field 'characters'" in message


def test_budget_overrides_replace_only_what_they_set(tmp_path: Path) -> None:
    [world] = load_worlds_file(
        write(
            tmp_path,
            """\
            worlds:
              - id: a
                prompt: p
                characters: 8
                posts_per_day: 12
                budget:
                  daily: {images: 5, usd: 1}
                  setup: {text_calls: 3}
            """,
        )
    )
    day = world.daily_budget()
    default_day = Budget.for_day(12)
    assert (day.images, day.text_calls, day.usd) == (5, default_day.text_calls, 1.0)
    setup = world.setup_budget()
    default_setup = Budget.for_setup(8)
    assert (setup.images, setup.text_calls, setup.usd) == (
        default_setup.images,
        3,
        default_setup.usd,
    )


def test_default_worlds_file_follows_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENERIA_WORLDS_FILE", raising=False)
    assert default_worlds_file() == Path("worlds.yaml")
    monkeypatch.setenv("GENERIA_WORLDS_FILE", "/etc/generia/worlds.yaml")
    assert default_worlds_file() == Path("/etc/generia/worlds.yaml")


async def test_file_catalog_lists_gets_and_rereads(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    catalog: WorldCatalog = FileCatalog(path)
    listing = await catalog.list_worlds()
    assert listing.ids == ["neon-harbor"]
    assert listing.skipped == ()
    assert str(path) in catalog.source
    assert (await catalog.get_world("neon-harbor")).characters == 8
    with pytest.raises(UnknownWorld, match=r"has no world 'other' \(worlds: neon-harbor\)"):
        await catalog.get_world("other")
    path.write_text(EXAMPLE.replace("characters: 8", "characters: 9"), encoding="utf-8")
    assert (await catalog.get_world("neon-harbor")).characters == 9
    path.write_text("worlds: 3\n", encoding="utf-8")
    with pytest.raises(WorldsFileError):
        await catalog.list_worlds()


BASE = World(
    id="neon-harbor",
    name="Neon Harbor",
    description="Docks and neon",
    prompt="A rain-soaked port city",
    users_count=8,
    posts_count=12,
)


class FakeWorlds:
    """The two async methods ServiceCatalog uses, over a fixed list."""

    def __init__(self, worlds: list[World]) -> None:
        self.worlds = worlds

    async def all_worlds(self) -> list[World]:
        return list(self.worlds)

    async def get_world(self, world_id: str) -> World:
        for world in self.worlds:
            if world.id == world_id:
                return world
        raise LookupError(world_id)


def test_map_world_takes_counts_from_the_service() -> None:
    mapped = map_world(BASE)
    assert mapped.spec == WorldSpec(
        id="neon-harbor",
        name="Neon Harbor",
        description="Docks and neon",
        prompt="A rain-soaked port city",
        characters=8,
        posts_per_day=12,
    )
    assert mapped.notes == ()


@pytest.mark.parametrize(
    ("users", "posts", "characters", "per_day", "note"),
    [
        (0, 0, 25, 10, "users_count is 0; using the default 25 characters"),
        (-4, 12, 25, 12, "users_count is -4"),
        (41, 12, 40, 12, "users_count is 41; capped at the platform's maximum 40"),
        (8, 251, 8, 250, "posts_count is 251; capped at the platform's maximum 250"),
        (8, 0, 8, 10, "posts_count is 0; using the default 10 posts a day"),
        (40, 250, 40, 250, None),
        (1, 1, 1, 1, None),
    ],
)
def test_map_world_clamps_and_defaults_counts_with_a_note(
    users: int, posts: int, characters: int, per_day: int, note: str | None
) -> None:
    mapped = map_world(replace(BASE, users_count=users, posts_count=posts))
    assert mapped.spec is not None
    assert (mapped.spec.characters, mapped.spec.posts_per_day) == (characters, per_day)
    if note:
        assert any(note in n and "neon-harbor" in n for n in mapped.notes), mapped.notes
    else:
        assert mapped.notes == ()


def test_map_world_reads_pipeline_overrides_from_params() -> None:
    params = json.dumps(
        {"setting": "docks", "pipeline": {"posts_per_day": 3, "budget": {"daily": {"usd": 2}}}}
    )
    spec = map_world(replace(BASE, params=params)).spec
    assert spec is not None
    assert spec.posts_per_day == 3
    assert spec.daily_budget().usd == 2.0


@pytest.mark.parametrize(
    ("params", "note"),
    [
        ("not json", "params is not JSON"),
        ('{"pipeline": 3}', "params.pipeline is not an object"),
        ('{"pipeline": {"posts_per_day": 999}}', "params.pipeline ignored"),
        ('{"pipeline": {"colour": "red"}}', "keys ['colour'] are not used"),
    ],
)
def test_map_world_ignores_bad_params_with_a_note(params: str, note: str) -> None:
    mapped = map_world(replace(BASE, params=params))
    assert mapped.spec is not None
    assert mapped.spec.posts_per_day == 12
    assert any(note in n for n in mapped.notes), mapped.notes


def test_name_falls_back_to_the_id() -> None:
    spec = map_world(replace(BASE, name="")).spec
    assert spec is not None and spec.name == "neon-harbor"


async def test_service_catalog_skips_and_reports_unusable_worlds() -> None:
    worlds = [
        BASE,
        replace(BASE, id="Bad Id"),
        replace(BASE, id="no-prompt", prompt="   "),
        replace(BASE, id="a|b"),
        replace(BASE, id="big", users_count=100),
        replace(BASE, name="again"),
    ]
    catalog = ServiceCatalog(FakeWorlds(worlds))
    listing = await catalog.list_worlds()
    assert isinstance(listing, CatalogListing)
    assert listing.source == "World service"
    assert listing.ids == ["neon-harbor", "big"]
    skipped = {s.world_id: s.reason for s in listing.skipped}
    assert set(skipped) == {"Bad Id", "no-prompt", "a|b", "neon-harbor"}
    assert "uppercase" in skipped["Bad Id"]
    assert skipped["no-prompt"] == "it has no prompt"
    assert "'|'" in skipped["a|b"]
    assert "listed this id twice" in skipped["neon-harbor"]
    assert any("world 'big': users_count is 100" in n for n in listing.notes)


async def test_service_catalog_get_world() -> None:
    catalog = ServiceCatalog(
        FakeWorlds([BASE, replace(BASE, id="no-prompt", prompt=""), replace(BASE, id="Up")])
    )
    assert (await catalog.get_world("neon-harbor")).posts_per_day == 12
    with pytest.raises(UnusableWorld, match="'no-prompt' cannot be populated: it has no prompt"):
        await catalog.get_world("no-prompt")
    with pytest.raises(InvalidWorldKey):
        await catalog.get_world("Up")
