"""A call's inputs, checked before anything is sent: a bad one is a RunwareRequestError."""

from __future__ import annotations

import uuid

from generia_pipelines.clients.runware.errors import RunwareRequestError
from generia_pipelines.clients.runware.settings import (
    MAX_PROMPT_CHARS,
    MAX_SEED,
    RunwareSettings,
    size_problem,
)


def canonical_uuid(value: object) -> str:
    """The taskUUID as Runware expects it (canonical lowercase), or RunwareRequestError."""
    if not isinstance(value, str):
        raise RunwareRequestError(f"taskUUID={value!r} is not a UUID string")
    try:
        parsed = uuid.UUID(value.strip())
    except ValueError:
        raise RunwareRequestError(f"taskUUID={value!r} is not a UUID string") from None
    if len(value.strip()) != 36:  # braces, urn: prefix or no dashes: not what the API takes
        raise RunwareRequestError(f"taskUUID={value!r} is not a canonical UUID string")
    return str(parsed)


def checked_request(
    settings: RunwareSettings,
    prompt: str,
    seed: int | None,
    width: int | None,
    height: int | None,
    negative_prompt: str | None,
) -> tuple[str, int | None, int, int, str]:
    """A call's arguments, the settings' defaults filled in (prompt, seed, size, negative)."""
    width = settings.width if width is None else width
    height = settings.height if height is None else height
    for name, value in (("width", width), ("height", height)):
        problem = size_problem(name, value)
        if problem:
            raise RunwareRequestError(f"image {problem}")
    text = prompt.strip() if isinstance(prompt, str) else ""
    if not 2 <= len(text) <= MAX_PROMPT_CHARS:
        raise RunwareRequestError(
            f"the prompt must have 2..{MAX_PROMPT_CHARS} characters, got {len(text)}"
        )
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 1 <= seed <= MAX_SEED
    ):
        raise RunwareRequestError(f"seed={seed!r} must be within 1..{MAX_SEED}")
    negative = settings.negative_prompt if negative_prompt is None else negative_prompt
    return text, seed, width, height, negative
