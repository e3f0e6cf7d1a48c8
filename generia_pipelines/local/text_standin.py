"""Offline stand-in for an OpenAI-compatible chat completions endpoint, with injectable faults.

``POST /v1/chat/completions`` answers a structured-output request (``response_format:
json_schema``, as the ``openai`` text backend sends it) with what the offline generator
builds for that schema. The prompt's structured inputs are recovered from the labelled lines
of the rendered templates (world name, brief, roster, profile...), so answers stay themed and
consistent (a profile keeps its planned name, a batch avoids the roster's names); what cannot
be recovered falls back to defaults. The request's ``seed`` fixes the answer, so it is
deterministic per unit of work, and a re-ask gets the same, valid, answer.

Faults, settable at run time from any thread (:class:`TextFaults`), each a share of requests
drawn from a seeded RNG: HTTP 429 / 500, added latency, replies that are not JSON, JSON that
violates the schema, replies cut off at the token limit (``finish_reason: length``), and
replies written in the wrong language (a Russian world answered in English, and back),
always or only before a re-ask.
It lets a chaos run drive the real ``openai`` backend, re-asks and retries included, offline.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel, ValidationError

from generia_pipelines.clients.text.base import stable_seed
from generia_pipelines.generation import offline
from generia_pipelines.generation.language import LANGUAGES
from generia_pipelines.generation.prompts import PromptInputs, WorldInfo
from generia_pipelines.generation.schemas import (
    SCHEMAS,
    CharacterConcept,
    CharacterProfile,
    WorldBrief,
)
from generia_pipelines.local.object_store import HttpServer

DEFAULT_API_KEY: Final = "local-text-key"
DEFAULT_MODEL: Final = "generia-offline-chat"
_RATES: Final = (
    "error_rate",
    "latency_rate",
    "invalid_json_rate",
    "schema_violation_rate",
    "truncated_rate",
    "wrong_language_rate",
    "wrong_language_first_rate",
)
_NONE = "(none)"


@dataclass
class TextFaults:
    """Shares of requests to break; ``latency_s`` is added to a ``latency_rate`` share."""

    error_rate: float = 0.0
    latency_s: float = 0.0
    latency_rate: float = 0.0
    invalid_json_rate: float = 0.0
    schema_violation_rate: float = 0.0
    truncated_rate: float = 0.0
    wrong_language_rate: float = 0.0
    #: Only a conversation's first reply: a model that slips, then corrects when re-asked.
    wrong_language_first_rate: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def set(self, **values: float) -> None:
        """Set several faults at once (unknown names and rates outside [0, 1] are refused)."""
        names = {f.name for f in fields(self) if not f.name.startswith("_")}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {sorted(names)}")
        for name, value in values.items():
            if name in _RATES and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        with self._lock:
            for name, value in values.items():
                setattr(self, name, float(value))

    def reset(self) -> None:
        self.set(**{name: 0.0 for name in (*_RATES, "latency_s")})

    def draw(self, rate: str) -> bool:
        """True for the given share (a ``*_rate`` attribute) of requests."""
        with self._lock:
            value = float(getattr(self, rate))
            return value > 0 and self._rng.random() < value

    def coin(self) -> bool:
        with self._lock:
            return self._rng.random() < 0.5


@dataclass
class TextStats:
    """What the stand-in answered and broke; read a consistent copy with :meth:`snapshot`."""

    requests: int = 0
    answered: int = 0
    by_schema: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, counter: str, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                setattr(self, counter, getattr(self, counter) + 1)
            else:
                getattr(self, counter)[key] += 1

    def snapshot(self) -> TextStats:
        with self._lock:
            return TextStats(
                requests=self.requests,
                answered=self.answered,
                by_schema=Counter(self.by_schema),
                injected=Counter(self.injected),
                rejected=Counter(self.rejected),
            )


# --------------------------------------------------------------------------- prompt reading


def _value(text: str, label: str) -> str:
    """The rest of the first line reading ``label ...`` (a leading ``- `` is ignored)."""
    for line in text.splitlines():
        stripped = line.strip().removeprefix("- ").strip()
        if stripped.startswith(label):
            found = stripped[len(label) :].strip()
            return "" if found == _NONE else found
    return ""


def _listed(text: str, label: str) -> list[str]:
    return [item.strip() for item in _value(text, label).split(",") if item.strip()]


def _block(text: str, heading: str) -> list[str]:
    """The ``- `` lines following the line that starts with ``heading``, up to a blank line."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith(heading):
            found = []
            for item in lines[index + 1 :]:
                if not item.strip().startswith("- "):
                    break
                found.append(item.strip()[2:].strip())
            return found
    return []


def _model(schema: type[BaseModel], data: Mapping[str, Any]) -> Any:
    try:
        return schema.model_validate(data)
    except ValidationError:
        return None


def _roster(text: str) -> tuple[CharacterConcept, ...]:
    concepts: list[CharacterConcept] = []
    for line in _block(text, "Already living here"):
        if line.startswith("also:"):
            names = [n.strip() for n in line.removeprefix("also:").split(",")]
            pairs = [(name, "resident") for name in names if name]
        else:
            name, _, role = line.partition(": ")
            pairs = [(name.strip(), role.strip() or "resident")]
        for name, role in pairs:
            concept = _model(
                CharacterConcept, {"display_name": name, "role": role[:120], "hook": "known"}
            )
            if concept is not None:
                concepts.append(concept)
    return tuple(concepts)


def _profile(text: str, name: str) -> CharacterProfile | None:
    if not name:
        return None
    return _model(  # type: ignore[no-any-return]
        CharacterProfile,
        {
            "display_name": name,
            "bio": _value(text, "Bio:") or "A local.",
            "personality": _value(text, "Personality:") or "Curious.",
            "interests": _listed(text, "Interests:")[:8] or ["daily life"],
            "speaking_style": _value(text, "Speaking style:") or "plain",
            "appearance": _value(text, "Appearance:") or "an ordinary resident",
        },
    )


def _language(text: str) -> str:
    """The code of ``World language: Russian (ru)``; empty (detected) when absent."""
    found = re.search(r"\(([a-z]{2})\)$", _value(text, "World language:"))
    return found.group(1) if found and found.group(1) in LANGUAGES else ""


def prompt_inputs(text: str) -> PromptInputs:
    """The structured inputs of a rendered prompt, read back from its labelled lines."""
    world = WorldInfo(
        name=_value(text, "World name:") or "this world",
        description=_value(text, "World description:"),
        prompt=_value(text, "What its creator asked for:"),
        language=_language(text),
    )
    brief = None
    if "In short:" in text:
        brief = _model(
            WorldBrief,
            {
                "summary": _value(text, "In short:"),
                "setting": _value(text, "Setting:"),
                "tone": _value(text, "Tone:"),
                "visual_style": _value(text, "Visual style:"),
                "themes": _listed(text, "Themes:")[:8],
                "motifs": _listed(text, "Motifs:")[:12],
            },
        )
    count = re.search(r"Plan (\d+) new inhabitants", text)
    concept = _model(
        CharacterConcept,
        {
            "display_name": _value(text, "Display name:"),
            "role": _value(text, "Role:")[:120],
            "hook": _value(text, "What sets them apart:")[:240],
        },
    )
    post_by = re.search(r"post by (.+?)(?: for (\d{4}-\d{2}-\d{2}))?\.$", text, re.MULTILINE)
    name = _value(text, "Character:") or (post_by.group(1) if post_by else "")
    recent = tuple(p for p in _block(text, "Their latest posts") if p)
    return PromptInputs(
        world=world,
        brief=brief,
        count=int(count.group(1)) if count else 0,
        earlier=_roster(text),
        concept=concept,
        profile=_profile(text, name),
        recent_posts=recent,
        day=post_by.group(2) if post_by else None,
    )


# --------------------------------------------------------------------------- answers


def _in_other_language(inputs: PromptInputs) -> PromptInputs:
    """The same inputs for a world in another language: a model that slipped."""
    other = next(code for code in LANGUAGES if code != inputs.world.language)
    return replace(inputs, world=replace(inputs.world, language=other))


def _violate(answer: dict[str, Any]) -> dict[str, Any]:
    """Valid JSON, invalid object: a required key missing and an unknown one added."""
    broken = dict(answer)
    if broken:
        broken.pop(next(iter(broken)))
    broken["note"] = "an extra key the schema does not allow"
    return broken


class TextStandin:
    """The server; ``await start()`` it on the running loop (port 0 picks a free port)."""

    def __init__(
        self, *, api_key: str = DEFAULT_API_KEY, model: str = DEFAULT_MODEL, seed: int = 0
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.faults = TextFaults(_rng=random.Random(seed))
        self.stats = TextStats()
        self._http = HttpServer(
            [
                web.post("/v1/chat/completions", self._complete),
                web.get("/v1/models", self._models),
                web.get("/health", self._health),
            ]
        )
        self._host = "127.0.0.1"

    @property
    def url(self) -> str:
        """The base URL to give the ``openai`` backend (``GENERIA_TEXT_BASE_URL``)."""
        return f"http://{self._host}:{self._http.port}/v1"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> TextStandin:
        await self._http.start(host, port)
        self._host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        return self

    async def stop(self) -> None:
        await self._http.stop()

    @staticmethod
    def _error(status: int, message: str, **headers: str) -> web.Response:
        return web.json_response(
            {"error": {"message": message, "code": status}}, status=status, headers=headers
        )

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model}]})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _complete(self, request: web.Request) -> web.Response:
        self.stats.count("requests")
        if request.headers.get("Authorization", "") != f"Bearer {self.api_key}":
            self.stats.count("rejected", "unauthorized")
            return self._error(401, "Incorrect API key provided")
        try:
            body = await request.json()
            schema_name = body["response_format"]["json_schema"]["name"]
            schema = SCHEMAS[schema_name]
            messages = body["messages"]
            user = next(m["content"] for m in messages if m.get("role") == "user")
        except (ValueError, KeyError, TypeError, StopIteration):
            self.stats.count("rejected", "bad_request")
            return self._error(400, "expected a json_schema response_format naming a known schema")
        if self.faults.draw("latency_rate"):
            self.stats.count("injected", "latency")
            await asyncio.sleep(self.faults.latency_s)
        if self.faults.draw("error_rate"):
            status = 429 if self.faults.coin() else 500
            self.stats.count("injected", f"http_{status}")
            if status == 429:
                return self._error(429, "Rate limit reached, retry shortly", **{"Retry-After": "0"})
            return self._error(500, "The server had an error while processing your request")
        seed = body.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            seed = stable_seed(str(user), schema_name)
        first = not any(m.get("role") == "assistant" for m in messages)
        text, finish = self._reply(schema, prompt_inputs(str(user)), seed, first)
        self.stats.count("answered")
        self.stats.count("by_schema", schema_name)
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in messages) // 4
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(text) // 4,
                    "total_tokens": prompt_tokens + len(text) // 4,
                },
            }
        )

    def _reply(
        self, schema: type[BaseModel], inputs: PromptInputs, seed: int, first: bool
    ) -> tuple[str, str]:
        """The reply text and finish reason: the offline answer, maybe broken on purpose
        (``first``: the conversation's first reply, not a re-ask)."""
        slips = first and self.faults.draw("wrong_language_first_rate")
        if slips or self.faults.draw("wrong_language_rate"):
            self.stats.count("injected", "wrong_language")
            inputs = _in_other_language(inputs)
        answer = offline.build(schema, inputs, seed).model_dump(mode="json")
        text = json.dumps(answer, ensure_ascii=False)
        if self.faults.draw("invalid_json_rate"):
            self.stats.count("injected", "invalid_json")
            return "Sure! Here it is: " + text[: max(1, len(text) // 2)], "stop"
        if self.faults.draw("schema_violation_rate"):
            self.stats.count("injected", "schema_violation")
            return json.dumps(_violate(answer), ensure_ascii=False), "stop"
        if self.faults.draw("truncated_rate"):
            self.stats.count("injected", "truncated")
            return text[: max(1, len(text) * 2 // 3)], "length"
        return text, "stop"


async def start(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api_key: str = DEFAULT_API_KEY,
    model: str = DEFAULT_MODEL,
    seed: int = 0,
) -> TextStandin:
    """Start a stand-in on the running loop; ``port=0`` picks a free port (see ``.url``)."""
    return await TextStandin(api_key=api_key, model=model, seed=seed).start(host, port)


class TextComponent:
    """The stand-in as a part of the local stack: points the ``openai`` text backend at it."""

    name = "text"

    def __init__(
        self,
        port: int = 0,
        *,
        api_key: str = DEFAULT_API_KEY,
        model: str = DEFAULT_MODEL,
        seed: int = 0,
    ) -> None:
        self.port = port
        self.api_key = api_key
        self.model = model
        self.seed = seed
        self.standin: TextStandin | None = None

    async def start(self, host: str) -> dict[str, str]:
        self.standin = await start(
            host, self.port, api_key=self.api_key, model=self.model, seed=self.seed
        )
        return {
            "GENERIA_TEXT_BACKEND": "openai",
            "GENERIA_TEXT_BASE_URL": self.standin.url,
            "GENERIA_TEXT_API_KEY": self.api_key,
            "GENERIA_TEXT_MODEL": self.model,
        }

    async def stop(self) -> None:
        if self.standin is not None:
            standin, self.standin = self.standin, None
            await standin.stop()
