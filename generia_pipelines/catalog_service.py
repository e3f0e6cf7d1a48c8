"""The World service as the worlds catalog: its records mapped to ``WorldSpec``.

Used when ``GENERIA_WORLD_ADDR`` is set. A service world the pipeline cannot populate (a bad
id, no prompt, an unsupported language) is skipped and reported, like a bad entry of a
worlds file; asking for it by id raises ``UnusableWorld`` with the reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from generia_pipelines.catalog import (
    DEFAULT_CHARACTERS,
    DEFAULT_POSTS_PER_DAY,
    LANGUAGE_KEY,
    MAX_CHARACTERS,
    MAX_POSTS_PER_DAY,
    PARAMS_KEY,
    CatalogListing,
    SkippedWorld,
    UnusableWorld,
    WorldSpec,
    explain,
)
from generia_pipelines.clients.records import World
from generia_pipelines.partitions import InvalidWorldKey, validate_world_key


class WorldSource(Protocol):
    """What ServiceCatalog needs of the World service client."""

    async def all_worlds(self) -> list[World]: ...

    async def get_world(self, world_id: str) -> World: ...


@dataclass(frozen=True)
class MappedWorld:
    """A service world translated: the spec, or why it was skipped; plus adjustments."""

    world_id: str
    spec: WorldSpec | None
    skipped: str | None = None
    notes: tuple[str, ...] = ()


def _count(value: int, default: int, maximum: int, what: str, source: str, notes: list[str]) -> int:
    if value <= 0:
        notes.append(f"{source} is {value}; using the default {default} {what}")
        return default
    if value > maximum:
        notes.append(f"{source} is {value}; capped at the platform's maximum {maximum} {what}")
        return maximum
    return value


def map_world(world: World) -> MappedWorld:
    """Translate a World service record into a ``WorldSpec``.

    - ``users_count`` is the world's character target (CreateWorld's ``characters_count``
      lands there); 0 means unset and takes the platform default 25, more than 40 is capped.
    - ``posts_count`` becomes ``posts_per_day``: the platform's number is what one
      generation pass of the world produces (1-250, CreateWorld's ``posts_count``), and the
      pipeline's pass is a day, so the world owner's number keeps its meaning and its
      bounds. 0 takes the default 10, more than 250 is capped.
    - ``params`` (JSON) may carry ``{"pipeline": {"posts_per_day": n, "budget": {...}}}``
      to override the daily count and the budgets; a malformed block is noted and ignored.
    - ``params`` may name the world's language (``{"language": "ru"}``); an unsupported one
      makes the world unusable, since writing it in another language would be wrong.
    """
    notes: list[str] = []
    try:
        validate_world_key(world.id)
    except InvalidWorldKey as exc:
        return MappedWorld(world.id, None, skipped=str(exc))
    if not world.prompt.strip():
        return MappedWorld(world.id, None, skipped="it has no prompt")
    prefix = f"world {world.id!r}: "
    characters = _count(
        world.users_count, DEFAULT_CHARACTERS, MAX_CHARACTERS, "characters", "users_count", notes
    )
    posts = _count(
        world.posts_count,
        DEFAULT_POSTS_PER_DAY,
        MAX_POSTS_PER_DAY,
        "posts a day",
        "posts_count",
        notes,
    )
    fields: dict[str, Any] = {
        "id": world.id,
        "name": world.name,
        "prompt": world.prompt,
        "description": world.description,
        "characters": characters,
        "posts_per_day": posts,
    }
    language = _params_value(world.params, LANGUAGE_KEY)
    if language is not None:
        fields["language"] = language
    try:
        spec = WorldSpec.model_validate(fields)
    except ValidationError as exc:  # the world's own texts (a 10 kB prompt, an escape code)
        renamed = {"language": f"params.{LANGUAGE_KEY}"} if language is not None else {}
        return MappedWorld(world.id, None, skipped=_details(exc, renamed))
    overrides = _pipeline_params(world.params, notes)
    if overrides:
        try:
            spec = WorldSpec.model_validate({**fields, **overrides})
        except ValidationError as exc:
            notes.append(f"params.{PARAMS_KEY} ignored ({_details(exc)})")
    return MappedWorld(world.id, spec, notes=tuple(prefix + note for note in notes))


def _details(exc: ValidationError, renamed: dict[str, str] | None = None) -> str:
    names = renamed or {}
    return "; ".join(
        f"{names.get(where, where)}: {explain(e)}"
        for e in exc.errors()
        for where in [".".join(str(p) for p in e["loc"])]
    )


def _params_value(params: str | None, key: str) -> Any:
    """A top-level value of a service world's ``params`` JSON, or None."""
    try:
        decoded = json.loads(params) if params else None
    except ValueError:
        return None  # noted by _pipeline_params
    return decoded.get(key) if isinstance(decoded, dict) else None


def _pipeline_params(params: str | None, notes: list[str]) -> dict[str, Any]:
    if not params:
        return {}
    try:
        decoded = json.loads(params)
    except ValueError:
        notes.append("params is not JSON; pipeline overrides ignored")
        return {}
    block = decoded.get(PARAMS_KEY) if isinstance(decoded, dict) else None
    if block is None:
        return {}
    if not isinstance(block, dict):
        notes.append(f"params.{PARAMS_KEY} is not an object; ignored")
        return {}
    allowed = {"posts_per_day", "budget"}
    unknown = sorted(set(block) - allowed)
    if unknown:
        notes.append(f"params.{PARAMS_KEY} keys {unknown} are not used (only {sorted(allowed)})")
    return {key: value for key, value in block.items() if key in allowed}


class ServiceCatalog:
    """The worlds of the World service, mapped by ``map_world``; unusable ones are skipped."""

    def __init__(self, world_client: WorldSource) -> None:
        self._client = world_client

    @property
    def source(self) -> str:
        return "World service"

    async def list_worlds(self) -> CatalogListing:
        worlds: list[WorldSpec] = []
        skipped: list[SkippedWorld] = []
        notes: list[str] = []
        seen: set[str] = set()
        for world in await self._client.all_worlds():
            mapped = map_world(world)
            notes.extend(mapped.notes)
            if mapped.spec is None:
                skipped.append(SkippedWorld(world.id, mapped.skipped or "unusable"))
            elif mapped.spec.id in seen:
                skipped.append(SkippedWorld(world.id, "the service listed this id twice"))
            else:
                seen.add(mapped.spec.id)
                worlds.append(mapped.spec)
        return CatalogListing(self.source, tuple(worlds), tuple(skipped), tuple(notes))

    async def get_world(self, world_id: str) -> WorldSpec:
        validate_world_key(world_id)
        mapped = map_world(await self._client.get_world(world_id))
        if mapped.spec is None:
            raise UnusableWorld(world_id, mapped.skipped or "unusable")
        return mapped.spec

    async def get_worlds(self, world_ids: Sequence[str]) -> dict[str, WorldSpec | Exception]:
        """Each world or the error looking it up raised, one GetWorld each, side by side."""

        async def one(world_id: str) -> WorldSpec | Exception:
            try:
                return await self.get_world(world_id)
            except Exception as exc:  # each world's own error, raised by its own partition
                return exc

        found = await asyncio.gather(*(one(world_id) for world_id in world_ids))
        return dict(zip(world_ids, found, strict=True))
