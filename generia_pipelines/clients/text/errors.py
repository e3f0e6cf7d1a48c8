"""Errors of the text generation backends.

Messages name the backend, the schema and the unit of work, and never contain an API key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from generia_pipelines.errors import GeneriaError

if TYPE_CHECKING:
    from generia_pipelines.clients.text.base import TextUsage


class TextGenerationError(GeneriaError):
    """Base of every text generation failure."""


class InvalidOutputError(TextGenerationError):
    """The model kept answering with output the schema rejects (after the allowed re-asks).

    ``usage`` is what the rejected replies cost, so a budget can still be charged for them.
    """

    def __init__(
        self,
        *,
        backend: str,
        schema: str,
        fields: Sequence[str],
        problems: Sequence[str],
        attempts: int,
        unit: str = "",
        usage: TextUsage | None = None,
    ) -> None:
        self.backend = backend
        self.usage = usage
        self.schema = schema
        self.fields = tuple(fields)
        self.problems = tuple(problems)
        self.attempts = attempts
        self.unit = unit
        where = f" for {unit}" if unit else ""
        named = f" (fields: {', '.join(self.fields)})" if self.fields else ""
        tries = "attempt" if attempts == 1 else "attempts"
        super().__init__(
            f"{backend} text model gave no valid {schema}{where} in {attempts} {tries}{named}: "
            + "; ".join(self.problems)
        )


class TextProviderError(TextGenerationError):
    """The provider failed or refused the request (after retries when the failure was transient)."""

    def __init__(
        self,
        *,
        backend: str,
        details: str,
        status: int | None = None,
        attempts: int = 1,
        retryable: bool = False,
    ) -> None:
        self.backend = backend
        self.details = details
        self.status = status
        self.attempts = attempts
        self.retryable = retryable
        shown = f" (HTTP {status})" if status is not None else ""
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"{backend} text request failed{shown}{tries}: {details}")
