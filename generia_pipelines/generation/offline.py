"""Offline text: schema-valid objects built from a world's own words and seeded word banks.

The embedded default backend, for running the whole pipeline without a model or a network.
It reads the structured inputs of a prompt (never the prose), so it is deterministic: the
same world, unit and seed give the same object, byte for byte, on any machine. Every value
is fitted to the schema's limits before validation, so it cannot produce an invalid object.

It writes in the world's language: English (``offline_en``) or Russian (``offline_ru``, with
pymorphy3 declining the world's own nouns), each object in the shape both share
(``offline_common``). Image prompts are English in both.
"""

from __future__ import annotations

from pydantic import BaseModel

from generia_pipelines.generation import offline_en, offline_ru
from generia_pipelines.generation.language import RUSSIAN
from generia_pipelines.generation.offline_common import Builder, Picker
from generia_pipelines.generation.prompts import PromptInputs

#: The builders of each language, by schema; English is the default.
WRITERS: dict[str, dict[type[BaseModel], Builder]] = {
    "en": offline_en.BUILDERS,
    RUSSIAN.code: offline_ru.BUILDERS,
}
#: Every schema the offline writer can build (the same in every language).
BUILDERS = tuple(offline_en.BUILDERS)


def build(schema: type[BaseModel], inputs: PromptInputs, seed: int) -> BaseModel:
    """An object of ``schema`` for these inputs, in the world's language; KeyError if the
    schema is not one of ours."""
    builders = WRITERS.get(inputs.world.language, offline_en.BUILDERS)
    return builders[schema](Picker(seed), inputs)
