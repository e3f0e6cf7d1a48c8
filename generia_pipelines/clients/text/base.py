"""The text generation interface shared by every backend.

A :class:`TextTask` says what to produce (a pydantic schema), from what (a rendered prompt)
and for which unit of work (world id and unit key, which also fix the seed). A backend
answers with a :class:`TextResult` holding the validated object and what it cost.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from generia_pipelines.aio import AsyncClosing
from generia_pipelines.generation.prompts import Prompt

T = TypeVar("T", bound=BaseModel)


def stable_seed(*parts: str) -> int:
    """A seed derived from text, identical across processes and machines (unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class TextTask(Generic[T]):
    """One structured generation: the schema to fill, the prompt, and the unit it belongs to.

    ``unit_key`` is the ledger key of the unit of work (``posts/{world}/{date}/{slot}``);
    together with ``world_id`` it fixes the seed, so a retried unit asks the same question.
    """

    schema: type[T]
    prompt: Prompt
    world_id: str
    unit_key: str
    seed: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None

    @property
    def effective_seed(self) -> int:
        """The explicit seed, or one derived from the world, the unit and the schema."""
        if self.seed is not None:
            return self.seed
        return stable_seed(self.world_id, self.unit_key, self.schema.__name__)

    @property
    def schema_name(self) -> str:
        return self.schema.__name__


@dataclass(frozen=True)
class TextUsage:
    """What a generation consumed; ``cost_usd`` is None when the provider does not say."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    attempts: int = 1  # replies asked of the model: 1 + re-asks
    requests: int = 1  # calls sent to the provider, transport retries included

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def reasks(self) -> int:
        return self.attempts - 1

    def __add__(self, other: TextUsage) -> TextUsage:
        """Sum two usages; the cost stays unknown only when neither side knows it."""
        cost: float | None
        if self.cost_usd is None and other.cost_usd is None:
            cost = None
        else:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return TextUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=cost,
            attempts=self.attempts + other.attempts,
            requests=self.requests + other.requests,
        )


@dataclass(frozen=True)
class TextResult(Generic[T]):
    """A validated object, the reply text it was parsed from (for the ledger), and its usage."""

    value: T
    usage: TextUsage
    backend: str
    model: str
    raw: str = field(default="", repr=False)


@runtime_checkable
class TextGenerator(Protocol):
    """Produces schema-valid objects from prompts; every backend implements this."""

    @property
    def backend(self) -> str: ...

    @property
    def model(self) -> str: ...

    async def generate(self, task: TextTask[T]) -> TextResult[T]:
        """Return a validated object or raise a ``TextGenerationError``."""
        ...

    async def aclose(self) -> None:
        """Release connections; the generator is unusable afterwards."""
        ...


class BoundedTextGenerator(AsyncClosing):
    """Caps the calls in flight on another generator, so a fan-out cannot flood a provider."""

    def __init__(self, inner: TextGenerator, max_concurrency: int) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.inner = inner
        self.max_concurrency = max_concurrency
        self._semaphore = asyncio.Semaphore(max_concurrency)

    @property
    def backend(self) -> str:
        return self.inner.backend

    @property
    def model(self) -> str:
        return self.inner.model

    async def generate(self, task: TextTask[T]) -> TextResult[T]:
        async with self._semaphore:
            return await self.inner.generate(task)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __repr__(self) -> str:
        return f"BoundedTextGenerator({self.inner!r}, max_concurrency={self.max_concurrency})"
