"""Structured output over chat models: JSON schemas out, validated objects back, re-asks.

Shared by the chat backends (OpenAI-compatible, Runware): they only implement one call,
:meth:`ChatGenerator._complete`; parsing, validation and the bounded re-ask loop live here so
every backend treats a bad reply the same way.
"""

from __future__ import annotations

import abc
import copy
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from generia_pipelines.aio import AsyncClosing
from generia_pipelines.clients.text.base import TextResult, TextTask, TextUsage
from generia_pipelines.clients.text.errors import InvalidOutputError
from generia_pipelines.generation.language import (
    ENGLISH,
    IMAGE_FIELDS,
    Language,
    language_problems,
)
from generia_pipelines.generation.prompts import (
    PromptInputs,
    render_json_instructions,
    render_reask,
)

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

DEFAULT_MAX_REASKS = 2
#: Problems listed per rejection, and how much of a bad reply is echoed back to the model.
_PROBLEMS_MAX = 10
_ECHO_CHARS = 4000
#: Keywords OpenAI's strict mode rejects; their meaning moves into the description instead.
_LENGTH_KEYWORDS = ("minLength", "maxLength")
_DROPPED_KEYWORDS = ("title", "default")


def _resolve_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = copy.deepcopy(defs[ref.removeprefix("#/$defs/")])
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _resolve_refs(merged, defs)
        return {k: _resolve_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_resolve_refs(item, defs) for item in node]
    return node


def _length_note(node: dict[str, Any]) -> str:
    low, high = node.get("minLength"), node.get("maxLength")
    if low is not None and high is not None:
        return f"{low} to {high} characters"
    if high is not None:
        return f"at most {high} characters"
    return f"at least {low} characters"


def _strictify(node: Any) -> Any:
    if isinstance(node, list):
        return [_strictify(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strictify(v) for k, v in node.items() if k not in _DROPPED_KEYWORDS}
    if out.get("type") == "object" and "properties" in out:
        out["additionalProperties"] = False
        out["required"] = list(out["properties"])
    if any(k in out for k in _LENGTH_KEYWORDS):
        note = _length_note(out)
        for key in _LENGTH_KEYWORDS:
            out.pop(key, None)
        described = out.get("description")
        out["description"] = f"{described} ({note})" if described else note.capitalize()
    return out


def _is_text(node: dict[str, Any]) -> bool:
    items = node.get("items")
    return node.get("type") == "string" or (
        node.get("type") == "array" and isinstance(items, dict) and items.get("type") == "string"
    )


def _with_language(node: Any, lang: Language) -> Any:
    """Each text property's description says the language it is written in."""
    if isinstance(node, list):
        return [_with_language(item, lang) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _with_language(v, lang) for k, v in node.items()}
    for name, prop in (out.get("properties") or {}).items():
        if isinstance(prop, dict) and _is_text(prop):
            note = (
                f"in {ENGLISH.name}, for the image model"
                if name in IMAGE_FIELDS
                else f"in {lang.name}"
            )
            described = prop.get("description")
            prop["description"] = f"{described}; {note}" if described else note.capitalize()
    return out


def _inlined(schema: type[BaseModel], lang: Language | None) -> Any:
    raw = schema.model_json_schema()
    inlined = _resolve_refs(raw, raw.get("$defs", {}))
    return inlined if lang is None else _with_language(inlined, lang)


def strict_json_schema(schema: type[BaseModel], lang: Language | None = None) -> dict[str, Any]:
    """The JSON schema of a model in the subset strict structured outputs accept.

    References are inlined (not every provider follows ``$ref``), every object closes
    ``additionalProperties`` and requires all its keys, and string lengths become words in
    the description, since OpenAI's strict mode refuses ``minLength``/``maxLength``. The
    pydantic model still enforces them, and a reply that breaks one is re-asked. With a
    language, each text's description names the language it must be written in.
    """
    result: dict[str, Any] = _strictify(_inlined(schema, lang))
    return result


def schema_instructions(schema: type[BaseModel], lang: Language | None = None) -> str:
    """The schema spelled out in the prompt, for APIs that cannot enforce it themselves."""
    text = json.dumps(_inlined(schema, lang), ensure_ascii=False, indent=1)
    return render_json_instructions(schema.__name__, text)


@dataclass(frozen=True)
class ChatReply:
    """One completion as a backend received it."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    requests: int = 1
    refusal: str | None = None

    def usage(self) -> TextUsage:
        return TextUsage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=self.cost_usd,
            attempts=1,
            requests=self.requests,
        )


@dataclass(frozen=True)
class Rejection:
    """Why a reply was refused: the offending fields (may be empty) and readable problems."""

    fields: tuple[str, ...]
    problems: tuple[str, ...]


def _snippet(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_candidates(text: str) -> list[str]:
    stripped = text.strip()
    candidates = [stripped]
    if stripped.startswith("```"):
        body = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        candidates.append(body.rsplit("```", 1)[0].strip())
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        candidates.append(stripped[start : end + 1])
    return candidates


def rejection_of(error: ValidationError) -> Rejection:
    """Name each offending field (``tags.2``) with what was wrong and what was given."""
    fields: list[str] = []
    problems: list[str] = []
    for item in error.errors(include_url=False)[:_PROBLEMS_MAX]:
        loc = ".".join(str(part) for part in item["loc"]) or "(root)"
        if loc not in fields:
            fields.append(loc)
        shown = "" if item["type"] == "missing" else f" (got {_snippet(item.get('input'))})"
        problems.append(f"{loc}: {item['msg']}{shown}")
    return Rejection(tuple(fields), tuple(problems))


def parse_reply(schema: type[T], reply: ChatReply) -> T | Rejection:
    """The validated object, or why the reply cannot be used.

    Mild leniency (code fences, prose around one JSON object) saves a paid re-ask; anything
    the schema rejects is refused. A reply cut off at the token limit is refused even if it
    happens to parse, since its content may be incomplete.
    """
    if reply.refusal:
        return Rejection((), (f"the model refused: {_snippet(reply.refusal)}",))
    if reply.finish_reason == "length":
        return Rejection(
            (),
            ("the reply was cut off at the token limit (finish_reason=length); answer shorter",),
        )
    if not reply.text.strip():
        return Rejection((), ("the reply was empty",))
    decode_error: json.JSONDecodeError | None = None
    for candidate in _json_candidates(reply.text):
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError as exc:
            decode_error = decode_error or exc
            continue
        try:
            return schema.model_validate(data)
        except ValidationError as exc:
            return rejection_of(exc)
    return Rejection((), (f"the reply is not valid JSON ({decode_error})",))


def own_names(inputs: PromptInputs) -> tuple[str, ...]:
    """The words of the world's own names (the world's, its characters'), which a text may
    keep in their own script: a Russian caption may name a world called "Neon Harbor"."""
    names = [inputs.world.name, *(c.display_name for c in inputs.earlier)]
    for person in (inputs.concept, inputs.profile):
        if person is not None:
            names.append(person.display_name)
    return tuple(word for name in names for word in name.split())


def language_rejection(value: BaseModel, inputs: PromptInputs) -> Rejection | None:
    """Why a schema-valid reply is still unusable: a text not in the language it must be in
    (the world's, or English for image-facing fields); None when every text is."""
    found = language_problems(value, inputs.world.lang, own_names(inputs))
    if not found:
        return None
    return Rejection(tuple(field for field, _ in found), tuple(problem for _, problem in found))


class ChatGenerator(abc.ABC, AsyncClosing):
    """A chat-model backend: one completion call, plus the shared validate/re-ask loop."""

    backend: ClassVar[str] = "chat"

    def __init__(
        self, *, model: str, max_reasks: int = DEFAULT_MAX_REASKS, schema_in_prompt: bool
    ) -> None:
        if max_reasks < 0:
            raise ValueError(f"max_reasks must be 0 or more, got {max_reasks}")
        self._model = model
        self.max_reasks = max_reasks
        self.schema_in_prompt = schema_in_prompt

    @property
    def model(self) -> str:
        return self._model

    @abc.abstractmethod
    async def _complete(self, messages: Sequence[dict[str, str]], task: TextTask[Any]) -> ChatReply:
        """Send one conversation and return the model's reply (provider errors raise)."""

    async def aclose(self) -> None:
        """Release connections."""

    def _first_messages(self, task: TextTask[Any]) -> list[dict[str, str]]:
        system = task.prompt.system
        if self.schema_in_prompt:
            lang = task.prompt.inputs.world.lang
            system = f"{system}\n\n{schema_instructions(task.schema, lang)}"
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": task.prompt.user},
        ]

    async def generate(self, task: TextTask[T]) -> TextResult[T]:
        """Ask, validate, and re-ask with the problems spelled out, at most ``max_reasks`` times."""
        messages = self._first_messages(task)
        usage: TextUsage | None = None
        rejection = Rejection((), ())
        for attempt in range(1, self.max_reasks + 2):
            reply = await self._complete(messages, task)
            usage = reply.usage() if usage is None else usage + reply.usage()
            outcome = parse_reply(task.schema, reply)
            if not isinstance(outcome, Rejection):
                outcome = language_rejection(outcome, task.prompt.inputs) or outcome
            if not isinstance(outcome, Rejection):
                return TextResult(
                    value=outcome,
                    usage=usage,
                    backend=self.backend,
                    model=self.model,
                    raw=reply.text,
                )
            rejection = outcome
            log.warning(
                "%s reply %d for %s (%s) rejected: %s",
                self.backend,
                attempt,
                task.unit_key,
                task.schema_name,
                "; ".join(outcome.problems),
            )
            messages = [
                *messages,
                {"role": "assistant", "content": reply.text[:_ECHO_CHARS] or "(empty reply)"},
                {"role": "user", "content": render_reask(task.schema_name, outcome.problems)},
            ]
        raise InvalidOutputError(
            backend=self.backend,
            schema=task.schema_name,
            fields=rejection.fields,
            problems=rejection.problems,
            attempts=self.max_reasks + 1,
            unit=task.unit_key,
            usage=usage,
        )
