"""Dagster resource for text generation: picks the backend and holds it for one run.

The backend is built on the run's event loop (Dagster enters an async
``yield_for_execution`` on it) and closed when the run ends. Calls share one semaphore, so
however wide an asset fans out, at most ``max_concurrency`` texts are generated at once.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self, TypeVar

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import BaseModel, Field, PrivateAttr

from generia_pipelines.clients.text.base import TextGenerator, TextResult, TextTask
from generia_pipelines.clients.text.factory import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_MAX_CONCURRENCY,
    TextSettings,
    create_text_generator,
)
from generia_pipelines.clients.text.structured import DEFAULT_MAX_REASKS

T = TypeVar("T", bound=BaseModel)


class TextGenerationResource(ConfigurableResource):
    """Structured text generation with the backend chosen by ``GENERIA_TEXT_BACKEND``."""

    backend: str = Field(
        default=DEFAULT_BACKEND, description=f"Text backend: {', '.join(BACKENDS)}"
    )
    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL (GENERIA_TEXT_BASE_URL), or the Runware URL",
    )
    api_key: str | None = Field(
        default=None, description="Provider API key (GENERIA_TEXT_API_KEY); never logged"
    )
    model: str | None = Field(default=None, description="Model name (GENERIA_TEXT_MODEL)")
    max_concurrency: int = Field(
        default=DEFAULT_MAX_CONCURRENCY, description="Text calls in flight per run"
    )
    timeout_s: float = Field(default=60.0, description="Timeout of one model call, seconds")
    max_reasks: int = Field(
        default=DEFAULT_MAX_REASKS, description="Re-asks after an invalid reply before failing"
    )
    temperature: float | None = Field(default=None, description="Sampling temperature")
    max_tokens: int | None = Field(default=None, description="Reply token limit")

    _generator: Any = PrivateAttr(default=None)

    def __repr_args__(self) -> Any:
        """Hide the key from reprs (Dagster logs and error messages may print resources)."""
        for name, value in super().__repr_args__():
            yield name, ("***" if name == "api_key" and value else value)

    def settings(self) -> TextSettings:
        return TextSettings(
            backend=self.backend,
            base_url=self.base_url,
            api_key=self.api_key,
            model=self.model,
            max_concurrency=self.max_concurrency,
            timeout_s=self.timeout_s,
            max_reasks=self.max_reasks,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )

    @asynccontextmanager
    async def yield_for_execution(  # type: ignore[override]
        self, context: InitResourceContext
    ) -> AsyncIterator[Self]:
        """Build the backend (failing here, naming the variable, if misconfigured)."""
        generator = create_text_generator(self.settings())
        self._generator = generator
        try:
            yield self
        finally:
            self._generator = None
            await generator.aclose()

    @property
    def generator(self) -> TextGenerator:
        """The run's generator (bounded by ``max_concurrency``)."""
        if self._generator is None:
            raise RuntimeError(
                "TextGenerationResource is only usable inside a Dagster run (its backend "
                "opens on the run's event loop)"
            )
        generator: TextGenerator = self._generator
        return generator

    async def generate(self, task: TextTask[T]) -> TextResult[T]:
        """Generate one validated object; see :class:`TextGenerator`."""
        return await self.generator.generate(task)

    @classmethod
    def from_env(cls) -> Self:
        """Configure from ``GENERIA_TEXT_*`` (``RUNWARE_*`` as the runware fallback).

        Values go through ``EnvVar`` so the key is resolved at run time and the UI shows the
        variable's name, not its value.
        """
        backend = (os.environ.get("GENERIA_TEXT_BACKEND") or DEFAULT_BACKEND).strip().lower()
        runware = backend == "runware"
        return cls(
            backend=backend,
            base_url=_env("GENERIA_TEXT_BASE_URL", "RUNWARE_URL" if runware else None),
            api_key=_env("GENERIA_TEXT_API_KEY", "RUNWARE_API_KEY" if runware else None),
            model=_env("GENERIA_TEXT_MODEL"),
        )


def _env(name: str, fallback: str | None = None) -> Any:
    """An EnvVar for the first variable that is set, else None."""
    for variable in (name, fallback):
        if variable and os.environ.get(variable):
            return EnvVar(variable)
    return None
