"""Structured text generation: one interface (:class:`TextGenerator`), three backends.

``local`` is offline and deterministic (the default), ``openai`` speaks any
OpenAI-compatible chat completions endpoint, ``runware`` uses the Runware SDK's
``textInference``. All return pydantic objects validated against the requested schema.
"""

from generia_pipelines.clients.text.base import (
    BoundedTextGenerator,
    TextGenerator,
    TextResult,
    TextTask,
    TextUsage,
    stable_seed,
)
from generia_pipelines.clients.text.errors import (
    InvalidOutputError,
    TextGenerationError,
    TextProviderError,
)
from generia_pipelines.clients.text.factory import (
    BACKENDS,
    TextSettings,
    create_text_generator,
)
from generia_pipelines.clients.text.local import LocalTextGenerator
from generia_pipelines.clients.text.openai_compat import OpenAICompatibleGenerator
from generia_pipelines.clients.text.runware_text import RunwareTextGenerator

__all__ = [
    "BACKENDS",
    "BoundedTextGenerator",
    "InvalidOutputError",
    "LocalTextGenerator",
    "OpenAICompatibleGenerator",
    "RunwareTextGenerator",
    "TextGenerationError",
    "TextGenerator",
    "TextProviderError",
    "TextResult",
    "TextSettings",
    "TextTask",
    "TextUsage",
    "create_text_generator",
    "stable_seed",
]
