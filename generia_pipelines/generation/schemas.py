"""Structured outputs the pipeline asks a text model for, with the platform's limits.

Each model is both the contract sent to the model (as a JSON schema) and the validator of
its reply, so a constraint written here is enforced on every backend. Whitespace around
strings is trimmed before the limits apply; unknown fields are rejected so a model that
invents keys is re-asked rather than silently trusted.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

#: Platform limits (Generia's character and post services).
DISPLAY_NAME_MAX = 64
CAPTION_MAX = 2200
TAGS_MAX = 10
TAG_MAX = 32
#: What a tag may hold: the platform keeps tags as plain strings, so any script will do.
TAG_RULE = f"lowercase letters of any alphabet, digits or underscores, 1-{TAG_MAX} characters"
#: Characters are planned in batches of at most this many (the platform's batch size).
CHARACTER_BATCH_MAX = 10
#: Runware accepts prompts up to 3000 characters; stay well inside it.
IMAGE_PROMPT_MAX = 1000

#: Unicode categories of a tag's characters besides ``_``: letters that are not upper- or
#: titlecase (scripts without case, like Arabic or Han, count as lowercase), the marks some
#: scripts write vowels with, decimal digits.
_TAG_CATEGORIES = frozenset({"Ll", "Lm", "Lo", "Mn", "Mc", "Nd"})


def _tag_char(char: str) -> bool:
    return char == "_" or unicodedata.category(char) in _TAG_CATEGORIES


def valid_tag(tag: str) -> bool:
    """Whether ``tag`` keeps the tag rule (``ночной_рынок``, ``night_market``, ``2026``)."""
    return 1 <= len(tag) <= TAG_MAX and all(_tag_char(c) for c in tag)


def _nfc(value: object) -> object:
    # A composed "й" and one written as "и" + a combining breve are the same tag.
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def _check_tag(tag: str) -> str:
    if not valid_tag(tag):
        shown = "".join(sorted({c for c in tag if not _tag_char(c)}))
        what = f"it contains {shown!r}" if shown else f"it is {len(tag)} characters long"
        raise ValueError(f"a tag is {TAG_RULE}, without '#'; {what}")
    return tag


def _text(max_length: int, min_length: int = 1) -> StringConstraints:
    return StringConstraints(min_length=min_length, max_length=max_length)


Tag = Annotated[
    str,
    BeforeValidator(_nfc),
    AfterValidator(_check_tag),
    Field(description=f"A tag: {TAG_RULE}, no '#'"),
]
ShortText = Annotated[str, _text(60)]
OneLine = Annotated[str, _text(DISPLAY_NAME_MAX)]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _single_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    return value


def _distinct(values: list[str], what: str) -> list[str]:
    seen: set[str] = set()
    for value in values:
        key = value.casefold()
        if key in seen:
            raise ValueError(f"{what} must be distinct, {value!r} appears twice")
        seen.add(key)
    return values


class WorldBrief(_Schema):
    """A world's shared description: every character and post is written against it."""

    summary: Annotated[str, _text(300)] = Field(
        description="Two or three sentences introducing the world to a newcomer"
    )
    setting: Annotated[str, _text(600)] = Field(
        description="Where and when life happens: places, era, technology, everyday routines"
    )
    tone: Annotated[str, _text(200)] = Field(description="The voice of the feed in a few words")
    visual_style: Annotated[str, _text(300)] = Field(
        description="The look every image shares: medium, palette, lighting, framing"
    )
    themes: list[ShortText] = Field(
        min_length=3, max_length=8, description="Recurring subjects people post about"
    )
    motifs: list[ShortText] = Field(
        min_length=3,
        max_length=12,
        description="Concrete recurring things (objects, places, creatures) to show in images",
    )


class CharacterConcept(_Schema):
    """One planned character: just enough to keep a cast diverse before detailing it."""

    display_name: OneLine = Field(description="Name shown on the profile, at most 64 characters")
    role: Annotated[str, _text(120)] = Field(description="What they are or do in this world")
    hook: Annotated[str, _text(240)] = Field(
        description="What sets them apart from everyone already in the world"
    )

    single_line_name = field_validator("display_name")(_single_line)


class CharacterBatchPlan(_Schema):
    """A batch of up to ten new characters, planned against the ones created before."""

    characters: list[CharacterConcept] = Field(min_length=1, max_length=CHARACTER_BATCH_MAX)

    @field_validator("characters")
    @classmethod
    def _distinct_names(cls, value: list[CharacterConcept]) -> list[CharacterConcept]:
        _distinct([c.display_name for c in value], "display names")
        return value


class CharacterProfile(_Schema):
    """A character in full: stored as the character's meta, read by avatar and post prompts."""

    display_name: OneLine = Field(description="Name shown on the profile, at most 64 characters")
    bio: Annotated[str, _text(300)] = Field(description="Public profile bio, in their own voice")
    personality: Annotated[str, _text(400)] = Field(description="Temperament, values, quirks")
    interests: list[ShortText] = Field(
        min_length=1, max_length=8, description="What they like to post about"
    )
    speaking_style: Annotated[str, _text(300)] = Field(
        description="How they write: length, vocabulary, punctuation, emoji habits"
    )
    appearance: Annotated[str, _text(500)] = Field(
        description="What their avatar shows: face, hair, clothing, distinctive details"
    )

    single_line_name = field_validator("display_name")(_single_line)


class AvatarPrompt(_Schema):
    """The text-to-image prompt of a character's avatar."""

    prompt: Annotated[str, _text(IMAGE_PROMPT_MAX, min_length=10)] = Field(
        description="A portrait prompt for an image model: subject, look, setting, style"
    )


class PostDraft(_Schema):
    """One post before its image exists: caption, tags and the prompt of its picture."""

    caption: Annotated[str, _text(CAPTION_MAX)] = Field(
        description="The post's text as the character would write it, at most 2200 characters"
    )
    tags: list[Tag] = Field(
        min_length=1, max_length=TAGS_MAX, description="1 to 10 distinct tags without '#'"
    )
    image_prompt: Annotated[str, _text(IMAGE_PROMPT_MAX, min_length=10)] = Field(
        description="A prompt for an image model showing what the post is about"
    )

    @field_validator("tags")
    @classmethod
    def _distinct_tags(cls, value: list[str]) -> list[str]:
        return _distinct(value, "tags")


def normalize_tag(text: str) -> str | None:
    """Turn free text ('#Night Market', '#Ночной Рынок') into a valid tag ('night_market',
    'ночной_рынок'), or None if nothing is left.

    For code that builds tags itself (the offline backend, asset code); model replies are
    validated strictly instead, so a model learns the rule from the re-ask.
    """
    lowered = unicodedata.normalize("NFC", text.strip().lstrip("#").lower())
    runs: list[str] = []
    for char in lowered:  # each run of other characters becomes one "_"
        if _tag_char(char):
            runs.append(char)
        elif not runs or runs[-1] != "\x00":
            runs.append("\x00")
    tag = "".join(runs).replace("\x00", "_").strip("_")
    tag = tag[:TAG_MAX].rstrip("_")
    return tag if valid_tag(tag) else None


#: Every schema the pipeline asks for, by name (the offline backend can build each one).
SCHEMAS: dict[str, type[BaseModel]] = {
    model.__name__: model
    for model in (WorldBrief, CharacterBatchPlan, CharacterProfile, AvatarPrompt, PostDraft)
}
