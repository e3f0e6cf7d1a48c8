"""Choose and build a text backend from settings (``GENERIA_TEXT_*``), free of Dagster."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from generia_pipelines.clients.text.base import BoundedTextGenerator, TextGenerator
from generia_pipelines.clients.text.local import LocalTextGenerator
from generia_pipelines.clients.text.openai_compat import OpenAICompatibleGenerator
from generia_pipelines.clients.text.runware_text import RunwareTextGenerator
from generia_pipelines.clients.text.structured import DEFAULT_MAX_REASKS
from generia_pipelines.errors import ConfigError

BACKEND_VAR = "GENERIA_TEXT_BACKEND"
BACKENDS = ("local", "openai", "runware")
DEFAULT_BACKEND = "local"
#: Text calls in flight per run; the design's upstream budget is 15-50.
DEFAULT_MAX_CONCURRENCY = 16


@dataclass(frozen=True)
class TextSettings:
    """Everything needed to build a backend; ``api_key`` is kept out of the repr."""

    backend: str = DEFAULT_BACKEND
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    timeout_s: float = 60.0
    max_reasks: int = DEFAULT_MAX_REASKS
    temperature: float | None = None
    max_tokens: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TextSettings:
        """Read ``GENERIA_TEXT_*``; the runware backend falls back to ``RUNWARE_*``."""
        env = os.environ if environ is None else environ
        backend = (env.get(BACKEND_VAR) or DEFAULT_BACKEND).strip().lower()
        base_url = env.get("GENERIA_TEXT_BASE_URL") or None
        api_key = env.get("GENERIA_TEXT_API_KEY") or None
        if backend == "runware":
            base_url = base_url or env.get("RUNWARE_URL") or None
            api_key = api_key or env.get("RUNWARE_API_KEY") or None
        return cls(
            backend=backend,
            base_url=base_url,
            api_key=api_key,
            model=env.get("GENERIA_TEXT_MODEL") or None,
        )


def create_text_generator(settings: TextSettings) -> BoundedTextGenerator:
    """The configured backend behind a concurrency cap; ConfigError names what is wrong."""
    backend = settings.backend.strip().lower()
    if settings.max_concurrency < 1:
        raise ConfigError(f"max_concurrency must be at least 1, got {settings.max_concurrency}")
    if settings.max_reasks < 0:
        raise ConfigError(f"max_reasks must be 0 or more, got {settings.max_reasks}")
    inner: TextGenerator
    if backend == "local":
        inner = LocalTextGenerator()
    elif backend == "openai":
        inner = OpenAICompatibleGenerator(
            base_url=settings.base_url or "",
            api_key=settings.api_key or "",
            model=settings.model or "",
            timeout_s=settings.timeout_s,
            max_reasks=settings.max_reasks,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            max_connections=settings.max_concurrency,
        )
    elif backend == "runware":
        inner = RunwareTextGenerator(
            api_key=settings.api_key or "",
            model=settings.model or "",
            url=settings.base_url,
            timeout_s=settings.timeout_s,
            max_reasks=settings.max_reasks,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
        )
    else:
        raise ConfigError(
            f"{BACKEND_VAR}={settings.backend!r} is not a text backend; "
            f"choose one of: {', '.join(BACKENDS)}"
        )
    return BoundedTextGenerator(inner, settings.max_concurrency)
