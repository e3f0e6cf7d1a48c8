"""The worlds catalog: which worlds the pipeline populates, and how much.

Two sources behind one async interface: the World service (when ``GENERIA_WORLD_ADDR`` is
set; ``catalog_service.py``) or a YAML file (``GENERIA_WORLDS_FILE``, default
``worlds.yaml``; this module). Every problem is
reported with the file, the world and the field, so one edit fixes them all. A file that
cannot be read as a catalog (invalid YAML, no ``worlds`` list) stops every world; a bad
world, in the file or from the service, is skipped and reported, so it does not stop the
others, and asking for it by id raises its own problems.

World texts are data sent to a model: they are bounded in length and may not carry control
characters (terminal escapes, NUL), which a person reviewing the catalog would not see.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import unicodedata
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Protocol

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from generia_pipelines.budget import Budget, BudgetOverrides
from generia_pipelines.errors import GeneriaError
from generia_pipelines.generation.language import (
    ENGLISH,
    UnsupportedLanguage,
    detect_language,
    language_code,
    supported_list,
)
from generia_pipelines.partitions import validate_world_key

WORLDS_FILE_VARIABLE = "GENERIA_WORLDS_FILE"
DEFAULT_WORLDS_FILE = "worlds.yaml"
#: The platform's world defaults and bounds (DESIGN.md §8).
DEFAULT_CHARACTERS = 25
MAX_CHARACTERS = 40
DEFAULT_POSTS_PER_DAY = 10
MAX_POSTS_PER_DAY = 250
#: Key of the pipeline's own settings inside a service world's ``params`` JSON.
PARAMS_KEY = "pipeline"
#: Key of the world's language inside a service world's ``params`` JSON (``"ru"``).
LANGUAGE_KEY = "language"
#: Length limits of a world's texts: they go into every prompt, so they are bounded.
NAME_MAX = 200
PROMPT_MAX = 4000
DESCRIPTION_MAX = 4000
#: Control characters a multi-line text may hold; any other is refused.
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_SHOWN_MAX = 80


def text_problem(value: str, limit: int) -> str | None:
    """Why a world text cannot be used (too long, a control character), or None."""
    if len(value) > limit:
        return f"is {len(value)} characters long, the limit is {limit}"
    for index, char in enumerate(value):
        if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS:
            return (
                f"contains the control character {char!r} (U+{ord(char):04X}) at position "
                f"{index}; remove it"
            )
    return None


class WorldSpec(BaseModel):
    """A world as the pipeline needs it: identity, theme and target counts."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str
    name: str
    prompt: Annotated[str, Field(min_length=1)]
    description: str = ""
    #: The language every text of the world is written in (a code, ``ru``); when the
    #: catalog gives none, the one its name, prompt and description are written in.
    language: Annotated[str, Field(validate_default=True)] = ""
    characters: Annotated[int, Field(strict=True, ge=1, le=MAX_CHARACTERS)] = DEFAULT_CHARACTERS
    posts_per_day: Annotated[int, Field(strict=True, ge=1, le=MAX_POSTS_PER_DAY)] = (
        DEFAULT_POSTS_PER_DAY
    )
    budget: BudgetOverrides | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("name") in (None, ""):
            world_id = data.get("id")
            # Clipped: an over-long id is its own problem, not also a name problem.
            return {**data, "name": world_id[:NAME_MAX] if isinstance(world_id, str) else ""}
        return data

    @field_validator("id", mode="before")
    @classmethod
    def _valid_key(cls, value: Any) -> Any:
        # Before stripping: " neon" must be refused, not silently become "neon".
        if not isinstance(value, str):
            raise ValueError(f'is {_kind(value)}, not a string (quote it in YAML: id: "...")')
        return validate_world_key(value)

    @field_validator("name", "prompt", "description")
    @classmethod
    def _clean_text(cls, value: str, info: ValidationInfo) -> str:
        limit = {"name": NAME_MAX, "prompt": PROMPT_MAX}.get(str(info.field_name), DESCRIPTION_MAX)
        problem = text_problem(value, limit)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str, info: ValidationInfo) -> str:
        if value:
            try:
                return language_code(value)
            except UnsupportedLanguage as exc:
                raise ValueError(str(exc)) from None
        texts = [info.data.get(key, "") for key in ("name", "prompt", "description")]
        if "prompt" not in info.data:  # the prompt is refused already; nothing to tell by
            return ""
        found = detect_language(text for text in texts if isinstance(text, str))
        if found is None:
            raise ValueError(
                "is not set, and the world's name, prompt and description do not tell it "
                f"(no word of a supported language); set it to one of {supported_list()}"
            )
        return found

    def fingerprint(self) -> str:
        """What the world's brief is written from (name, prompt, description, language),
        hashed: a brief whose fingerprint differs was written for another version of the
        world. English is left out: every brief written before worlds had a language was
        English, so those stay current and the others are written anew."""
        parts = [self.name, self.prompt, self.description]
        if self.language != ENGLISH.code:
            parts.append(self.language)
        source = "\x1f".join(parts)
        return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]

    def setup_budget(self) -> Budget:
        """Limits for the world's setup (brief, characters, avatars)."""
        return Budget.for_setup(self.characters, self.budget)

    def daily_budget(self) -> Budget:
        """Limits for one day of posts."""
        return Budget.for_day(self.posts_per_day, self.budget)


class CatalogError(GeneriaError):
    """The catalog cannot answer: a malformed file, an unknown or unusable world."""

    retryable = False  # only fixing the catalog helps


@dataclass(frozen=True)
class CatalogProblem:
    """One problem in a worlds file; ``world`` is ``worlds[i] (id '...')`` when known.

    ``world_id`` is the entry's id as written (when it is a string), so a run asking for
    that world can be told what is wrong with it.
    """

    message: str
    world: str | None = None
    field: str | None = None
    world_id: str | None = None

    def render(self, path: Path) -> str:
        where = [str(path)]
        if self.world:
            where.append(self.world)
        if self.field:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}"


class WorldsFileError(CatalogError):
    """A worlds file that cannot be used; lists every problem found."""

    def __init__(self, path: Path, problems: Sequence[CatalogProblem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        lines = [problem.render(path) for problem in self.problems]
        if len(lines) == 1:
            message = lines[0]
        else:
            message = f"{path} has {len(lines)} problems:\n" + "\n".join(f"- {x}" for x in lines)
        super().__init__(message)


class UnknownWorld(CatalogError):
    """The catalog has no world with this id."""


class UnusableWorld(CatalogError):
    """The catalog has the world but the pipeline cannot populate it (no prompt, bad id)."""

    def __init__(self, world_id: str, reason: str) -> None:
        self.world_id = world_id
        self.reason = reason
        super().__init__(f"world {world_id!r} cannot be populated: {reason}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping (PyYAML keeps the last)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


#: The same on libyaml's parser when PyYAML has it: a catalog of 1,000 worlds parses in a
#: quarter of the time, and every run and sensor tick reads the whole file.
_FastUniqueKeyLoader: type[yaml.SafeLoader] = type(
    "_FastUniqueKeyLoader", (getattr(yaml, "CSafeLoader", yaml.SafeLoader),), {}
)
_FastUniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,  # type: ignore[arg-type]
)
_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,  # type: ignore[arg-type]
)


def default_worlds_file() -> Path:
    """The worlds file named by ``GENERIA_WORLDS_FILE``, else ``worlds.yaml``."""
    return Path(os.environ.get(WORLDS_FILE_VARIABLE) or DEFAULT_WORLDS_FILE)


@dataclass(frozen=True)
class WorldsFile:
    """A worlds file read leniently: its usable worlds, and the problems of the others."""

    path: Path
    worlds: tuple[WorldSpec, ...]
    problems: tuple[CatalogProblem, ...] = ()

    def skipped(self) -> tuple[SkippedWorld, ...]:
        """One entry per bad world, its reason listing every problem it has."""
        reasons: dict[str, list[str]] = {}
        ids: dict[str, str] = {}
        for problem in self.problems:
            label = problem.world or "?"
            reasons.setdefault(label, []).append(problem.render(self.path))
            ids[label] = label if problem.world_id is None else problem.world_id
        return tuple(SkippedWorld(ids[label], "; ".join(why)) for label, why in reasons.items())


def load_worlds_file(path: str | os.PathLike[str]) -> list[WorldSpec]:
    """Read and validate a worlds file; raise ``WorldsFileError`` listing every problem."""
    contents = read_worlds_file(path)
    if contents.problems:
        raise WorldsFileError(contents.path, contents.problems)
    return list(contents.worlds)


def read_worlds_file(path: str | os.PathLike[str]) -> WorldsFile:
    """Read a worlds file, keeping the good worlds and listing the problems of the bad ones.

    A problem with the file itself (unreadable, invalid YAML, no ``worlds`` list, an unknown
    top-level key) raises ``WorldsFileError``: nothing in such a file can be trusted. A
    duplicated id leaves out every entry with that id, since which one was meant is unknown.
    """
    path = Path(path)
    document = _read_yaml(path)
    if not isinstance(document, dict):
        raise WorldsFileError(
            path,
            [
                CatalogProblem(
                    f"the file is {_kind(document)}; expected a mapping with a 'worlds' list"
                )
            ],
        )
    file_problems = [
        CatalogProblem(f"unknown top-level key {key!r}; the only key is 'worlds'")
        for key in document
        if key != "worlds"
    ]
    entries = document.get("worlds")
    if not isinstance(entries, list):
        if "worlds" not in document:
            file_problems.append(CatalogProblem("missing the 'worlds' list", field="worlds"))
        else:
            file_problems.append(
                CatalogProblem(
                    f"is {_kind(entries)}; expected a list of worlds ('worlds: []' for none)",
                    field="worlds",
                )
            )
        raise WorldsFileError(path, file_problems)

    problems: list[CatalogProblem] = []
    specs: list[WorldSpec] = []
    first_index: dict[str, int] = {}
    duplicated: set[str] = set()
    for index, entry in enumerate(entries):
        label = _world_label(index, entry)
        raw_id = entry.get("id") if isinstance(entry, dict) else None
        world_id = raw_id if isinstance(raw_id, str) else None
        if not isinstance(entry, dict):
            problems.append(CatalogProblem(f"is {_kind(entry)}; expected a mapping", world=label))
            continue
        try:
            spec = WorldSpec.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_problems(exc, label, world_id))
            continue
        if spec.id in first_index:
            duplicated.add(spec.id)
            problems.append(
                CatalogProblem(
                    f"duplicate id {spec.id!r}, already used by worlds[{first_index[spec.id]}]",
                    world=label,
                    field="id",
                    world_id=spec.id,
                )
            )
            continue
        first_index[spec.id] = index
        specs.append(spec)
    if file_problems:
        raise WorldsFileError(path, [*file_problems, *problems])
    usable = tuple(spec for spec in specs if spec.id not in duplicated)
    return WorldsFile(path, usable, tuple(problems))


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorldsFileError(
            path,
            [CatalogProblem(f"no such file (set {WORLDS_FILE_VARIABLE} to the catalog's path)")],
        ) from None
    except IsADirectoryError:
        raise WorldsFileError(path, [CatalogProblem("is a directory, not a file")]) from None
    except UnicodeDecodeError as exc:
        raise WorldsFileError(
            path, [CatalogProblem(f"is not UTF-8 text (byte {exc.start})")]
        ) from None
    except OSError as exc:
        raise WorldsFileError(path, [CatalogProblem(f"cannot be read: {exc.strerror}")]) from None
    try:
        return yaml.load(text, Loader=_FastUniqueKeyLoader)  # a SafeLoader on libyaml
    except yaml.YAMLError:
        pass  # parsed again below, for the pure-Python parser's clearer messages
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise WorldsFileError(path, [CatalogProblem(f"invalid YAML{where}: {problem}")]) from None


def _kind(value: object) -> str:
    """What a YAML value is, in words ("a list", "a date", "empty")."""
    if value is None:
        return "empty"
    for types, words in (
        (bool, "a boolean"),
        ((int, float), "a number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a mapping"),
        (date, "a date"),
    ):
        if isinstance(value, types):
            return words
    return f"a {type(value).__name__}"


def _world_label(index: int, entry: object) -> str:
    world_id = entry.get("id") if isinstance(entry, dict) else None
    return (
        f"worlds[{index}] (id {_shown(world_id)})"
        if isinstance(world_id, str)
        else f"worlds[{index}]"
    )


def _problems(
    exc: ValidationError, label: str, world_id: str | None = None
) -> list[CatalogProblem]:
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"])
        problems.append(
            CatalogProblem(explain(error), world=label, field=path or None, world_id=world_id)
        )
    return problems


def _shown(value: object) -> str:
    """A value as an error message quotes it: its repr, clipped (a prompt may be 10 kB)."""
    text = repr(value)
    return text if len(text) <= _SHOWN_MAX else f"{text[: _SHOWN_MAX - 2]}…{text[-1]}"


def explain(error: Any) -> str:
    """A pydantic error as a person would phrase it, with the offending value."""
    kind, loc = error["type"], error["loc"]
    if kind == "missing":
        return "is missing; every world needs a prompt" if loc == ("prompt",) else "is missing"
    if kind == "extra_forbidden":
        return "is not a known field (check the spelling)"
    if kind == "string_too_short":
        return "is empty" if loc != ("prompt",) else "is empty; every world needs a prompt"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return message
    return f"{message[:1].lower()}{message[1:]} (got {_shown(error.get('input'))})"


@dataclass(frozen=True)
class SkippedWorld:
    """A catalog world the pipeline leaves alone, and why."""

    world_id: str
    reason: str


@dataclass(frozen=True)
class CatalogListing:
    """The usable worlds of a catalog, and what was skipped or adjusted on the way."""

    source: str
    worlds: tuple[WorldSpec, ...]
    skipped: tuple[SkippedWorld, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def ids(self) -> list[str]:
        return [world.id for world in self.worlds]


class WorldCatalog(Protocol):
    """Where the worlds come from; both methods may do I/O, so both are async."""

    @property
    def source(self) -> str:
        """A short description for logs and metadata (never a secret)."""
        ...

    async def list_worlds(self) -> CatalogListing: ...

    async def get_world(self, world_id: str) -> WorldSpec: ...

    async def get_worlds(self, world_ids: Sequence[str]) -> dict[str, WorldSpec | Exception]: ...


class FileCatalog:
    """The worlds of a YAML file, re-read on every call so edits apply without a reload."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def source(self) -> str:
        return f"file {self.path}"

    async def list_worlds(self) -> CatalogListing:
        """The file's good worlds; bad ones are listed as skipped, with their problems."""
        contents = await asyncio.to_thread(read_worlds_file, self.path)
        return CatalogListing(self.source, contents.worlds, contents.skipped())

    async def get_world(self, world_id: str) -> WorldSpec:
        """The world, or an error naming its problems; another world's problems do not stop it."""
        contents = await asyncio.to_thread(read_worlds_file, self.path)
        return self._find(contents, world_id)

    async def get_worlds(self, world_ids: Sequence[str]) -> dict[str, WorldSpec | Exception]:
        """Each world or its error, from one read of the file (a run of many worlds)."""
        contents = await asyncio.to_thread(read_worlds_file, self.path)
        found: dict[str, WorldSpec | Exception] = {}
        for world_id in world_ids:
            try:
                found[world_id] = self._find(contents, world_id)
            except CatalogError as exc:
                found[world_id] = exc
        return found

    def _find(self, contents: WorldsFile, world_id: str) -> WorldSpec:
        for spec in contents.worlds:
            if spec.id == world_id:
                return spec
        own = [problem for problem in contents.problems if problem.world_id == world_id]
        if own:
            raise WorldsFileError(self.path, own)
        known = ", ".join(spec.id for spec in contents.worlds[:10]) or "none"
        raise UnknownWorld(
            f"{self.path} has no world {world_id!r} (worlds: {known}). This file is the "
            "catalog of this code location (GENERIA_WORLDS_FILE): add the world there and "
            "new_worlds_sensor sets it up; a partition whose world is in no catalog is "
            "retired by the sensor"
        )
