"""The offline text backend: deterministic, world-themed, free, and always schema-valid.

It is the embedded default so the pipeline runs end to end with no model and no network;
see :mod:`generia_pipelines.generation.offline` for how the text is made.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from generia_pipelines.aio import AsyncClosing
from generia_pipelines.clients.text.base import TextResult, TextTask, TextUsage
from generia_pipelines.clients.text.errors import InvalidOutputError, TextGenerationError
from generia_pipelines.clients.text.structured import language_rejection, rejection_of
from generia_pipelines.generation import offline

T = TypeVar("T", bound=BaseModel)

LOCAL_MODEL = "generia-offline-1"


class LocalTextGenerator(AsyncClosing):
    """Builds each schema from the prompt's structured inputs and the task's seed."""

    @property
    def backend(self) -> str:
        return "local"

    @property
    def model(self) -> str:
        return LOCAL_MODEL

    def __repr__(self) -> str:
        return "LocalTextGenerator()"

    async def generate(self, task: TextTask[T]) -> TextResult[T]:
        """Same task, same object: the seed comes from the world and unit of the task."""
        if task.schema not in offline.BUILDERS:
            known = ", ".join(s.__name__ for s in offline.BUILDERS)
            raise TextGenerationError(
                f"the local text backend cannot write {task.schema_name} (it knows {known})"
            )
        built = offline.build(task.schema, task.prompt.inputs, task.effective_seed)
        raw = built.model_dump_json()
        try:
            value = task.schema.model_validate_json(raw)
            rejection = language_rejection(value, task.prompt.inputs)
        except ValidationError as exc:
            rejection = rejection_of(exc)
        if rejection is not None:  # a bug in the word banks; re-asking would not help
            raise InvalidOutputError(
                backend=self.backend,
                schema=task.schema_name,
                fields=rejection.fields,
                problems=rejection.problems,
                attempts=1,
                unit=task.unit_key,
            ) from None
        usage = TextUsage(cost_usd=0.0, attempts=1, requests=0)
        return TextResult(value=value, usage=usage, backend=self.backend, model=self.model, raw=raw)

    async def aclose(self) -> None:
        """Nothing to release; present so every backend closes the same way."""
