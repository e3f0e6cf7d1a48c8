"""Render the prompt templates in ``generia_pipelines/prompts/`` into chat prompts.

Pure functions: same inputs, same text. Each rendered :class:`Prompt` also keeps the
structured inputs it was made from, so a backend that does not read prose (the offline one)
can build its answer from the same facts a model would see.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal, Protocol

from generia_pipelines.generation.language import (
    ENGLISH,
    LANGUAGES,
    Language,
    detect_language,
    language_code,
)
from generia_pipelines.generation.schemas import (
    CHARACTER_BATCH_MAX,
    TAG_RULE,
    CharacterConcept,
    CharacterProfile,
    WorldBrief,
)

PromptKind = Literal["world_brief", "character_batch", "character_detail", "avatar", "post_draft"]

#: Context limits: enough for a model to avoid repeating itself, bounded in tokens.
RECENT_POSTS_MAX = 5
RECENT_POST_CHARS = 280
ROSTER_DETAILED_MAX = 60
#: The templates ship inside the package (package data ``prompts/*.md``).
PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


class WorldLike(Protocol):
    """Anything describing a world (``clients.records.World``, a worlds-file entry)."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def prompt(self) -> str: ...


@dataclass(frozen=True)
class WorldInfo:
    """The creator-given description of a world, the seed of everything generated in it.

    ``language`` is the code of the language its texts are written in; left empty it is
    detected from the world's own words (English when they give no clue).
    """

    name: str
    description: str
    prompt: str
    language: str = ""

    def __post_init__(self) -> None:
        code = self.language and language_code(self.language)
        if not code:
            code = detect_language((self.name, self.prompt, self.description)) or ENGLISH.code
        object.__setattr__(self, "language", code)

    @property
    def lang(self) -> Language:
        return LANGUAGES[self.language]

    @classmethod
    def of(cls, world: WorldLike) -> WorldInfo:
        """The world's texts and language: a catalog world carries its language, a bare
        platform record has it detected."""
        code = getattr(world, "language", "")
        return cls(
            name=world.name,
            description=world.description,
            prompt=world.prompt,
            language=code if isinstance(code, str) else "",
        )


@dataclass(frozen=True)
class PromptInputs:
    """The structured facts a prompt was rendered from."""

    world: WorldInfo
    brief: WorldBrief | None = None
    count: int = 0
    earlier: tuple[CharacterConcept, ...] = ()
    concept: CharacterConcept | None = None
    profile: CharacterProfile | None = None
    recent_posts: tuple[str, ...] = ()
    day: str | None = None


@dataclass(frozen=True)
class Prompt:
    """A rendered chat prompt: a system message, a user message, and what they were made of."""

    kind: PromptKind
    system: str
    user: str
    inputs: PromptInputs


class _Strict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise KeyError(f"prompt template needs {{{key}}}, which was not given")


@functools.cache
def template(name: str) -> str:
    """A template's text, read once from the package."""
    return (PROMPTS_DIR / f"{name}.md").read_text("utf-8")


def render(name: str, values: Mapping[str, str]) -> str:
    """Fill a template's ``{placeholders}``; a missing value is an error, not an empty gap."""
    return string.Formatter().vformat(template(name), (), _Strict(values)).strip()


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _listing(items: Iterable[str]) -> str:
    return ", ".join(items)


def world_block(world: WorldInfo, brief: WorldBrief | None = None) -> str:
    """The world as every prompt shows it: the creator's words, then the brief if known."""
    block = render(
        "world_context",
        {
            "world_name": world.name,
            "world_description": world.description or "(none)",
            "world_prompt": world.prompt or "(none)",
            "language": world.lang.name,
            "language_code": world.lang.code,
        },
    )
    if brief is None:
        return block
    return (
        block
        + "\n"
        + render(
            "world_brief_context",
            {
                "summary": brief.summary,
                "setting": brief.setting,
                "tone": brief.tone,
                "visual_style": brief.visual_style,
                "themes": _listing(brief.themes),
                "motifs": _listing(brief.motifs),
            },
        )
    )


def roster_summary(earlier: Sequence[CharacterConcept]) -> str:
    """The running summary of a world's characters that keeps each new batch different.

    The latest characters are listed with their role; older ones beyond the limit by name
    only, so names are never reused however large the world grows.
    """
    if not earlier:
        return "(nobody yet)"
    older, recent = earlier[:-ROSTER_DETAILED_MAX], earlier[-ROSTER_DETAILED_MAX:]
    lines = [f"- {c.display_name}: {_clip(c.role, 120)}" for c in recent]
    if older:
        lines.insert(0, "- also: " + _listing(c.display_name for c in older))
    return "\n".join(lines)


def _prompt(kind: PromptKind, user: str, inputs: PromptInputs) -> Prompt:
    system = render("system", {"language": inputs.world.lang.name})
    return Prompt(kind=kind, system=system, user=user, inputs=inputs)


def render_world_brief(world: WorldLike) -> Prompt:
    """Ask for a world's brief from its creator's name, description and prompt."""
    info = WorldInfo.of(world)
    user = render("world_brief", {"world": world_block(info)})
    return _prompt("world_brief", user, PromptInputs(world=info))


def render_character_batch(
    world: WorldLike,
    brief: WorldBrief,
    count: int,
    earlier: Sequence[CharacterConcept] = (),
) -> Prompt:
    """Ask for ``count`` (1-10) new characters unlike the ``earlier`` ones."""
    if not 1 <= count <= CHARACTER_BATCH_MAX:
        raise ValueError(f"a batch plans 1 to {CHARACTER_BATCH_MAX} characters, not {count}")
    info = WorldInfo.of(world)
    user = render(
        "character_batch",
        {
            "count": str(count),
            "world": world_block(info, brief),
            "existing_count": str(len(earlier)),
            "roster": roster_summary(earlier),
        },
    )
    inputs = PromptInputs(world=info, brief=brief, count=count, earlier=tuple(earlier))
    return _prompt("character_batch", user, inputs)


def render_character_detail(
    world: WorldLike, brief: WorldBrief, concept: CharacterConcept
) -> Prompt:
    """Ask for the full profile of one planned character."""
    info = WorldInfo.of(world)
    user = render(
        "character_detail",
        {
            "world": world_block(info, brief),
            "display_name": concept.display_name,
            "role": concept.role,
            "hook": concept.hook,
        },
    )
    return _prompt("character_detail", user, PromptInputs(world=info, brief=brief, concept=concept))


def render_avatar_prompt(world: WorldLike, brief: WorldBrief, profile: CharacterProfile) -> Prompt:
    """Ask for the image prompt of a character's avatar."""
    info = WorldInfo.of(world)
    user = render(
        "avatar_prompt",
        {
            "world": world_block(info, brief),
            "display_name": profile.display_name,
            "bio": profile.bio,
            "appearance": profile.appearance,
            "personality": profile.personality,
        },
    )
    return _prompt("avatar", user, PromptInputs(world=info, brief=brief, profile=profile))


def render_post_draft(
    world: WorldLike,
    brief: WorldBrief,
    profile: CharacterProfile,
    recent_posts: Sequence[str] = (),
    day: date | str | None = None,
) -> Prompt:
    """Ask for one post by a character, given its latest captions (newest first)."""
    info = WorldInfo.of(world)
    recent = tuple(_clip(p, RECENT_POST_CHARS) for p in recent_posts[:RECENT_POSTS_MAX])
    day_text = day.isoformat() if isinstance(day, date) else day
    user = render(
        "post_draft",
        {
            "display_name": profile.display_name,
            "day_clause": f" for {day_text}" if day_text else "",
            "world": world_block(info, brief),
            "bio": profile.bio,
            "personality": profile.personality,
            "interests": _listing(profile.interests),
            "speaking_style": profile.speaking_style,
            "appearance": profile.appearance,
            "recent_posts": "\n".join(f"- {p}" for p in recent) or "(none yet)",
            "language": info.lang.name,
            "tag_rule": TAG_RULE,
        },
    )
    inputs = PromptInputs(
        world=info, brief=brief, profile=profile, recent_posts=recent, day=day_text
    )
    return _prompt("post_draft", user, inputs)


def render_json_instructions(schema_name: str, json_schema: str) -> str:
    """Schema instructions for backends whose API cannot enforce a JSON schema itself."""
    return render("json_reply", {"schema_name": schema_name, "json_schema": json_schema})


def render_reask(schema_name: str, problems: Sequence[str]) -> str:
    """The follow-up message that tells a model what was wrong with its last reply."""
    listed = "\n".join(f"- {p}" for p in problems) or "- (unknown problem)"
    return render("reask", {"schema_name": schema_name, "problems": listed})
