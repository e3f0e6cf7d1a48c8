"""What the offline writer does the same in every language: the seeded picker, the fitting of
texts to the schema's limits, and the shape of each object (which banks are drawn from, in
which order, and how the parts are fitted together).

A language module brings only what differs: its vocabulary (a module with the banks of
:class:`Vocabulary`), its theme words, how it names people and how it fills its templates
(a ``Filler`` closes over the slot values and, in Russian, the speaker's gender). The order
of the draws is part of the contract: the same seed gives the same text, byte for byte.

See :mod:`generia_pipelines.generation.offline` for the backend's contract.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import BaseModel

from generia_pipelines.generation import offline_vocab as en_vocab
from generia_pipelines.generation.prompts import PromptInputs
from generia_pipelines.generation.schemas import (
    CHARACTER_BATCH_MAX,
    DISPLAY_NAME_MAX,
    AvatarPrompt,
    CharacterBatchPlan,
    CharacterConcept,
    CharacterProfile,
    PostDraft,
    WorldBrief,
    normalize_tag,
)

X = TypeVar("X")


def fit(text: str, limit: int) -> str:
    """Collapse whitespace and cut at a word boundary so the text fits a schema limit."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


def unique(items: Iterable[str]) -> list[str]:
    """Distinct items in first-seen order (never iterate a set: its order varies by process)."""
    return list(dict.fromkeys(i for i in items if i))


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class Picker:
    """Seeded choices; the only source of variation, so output depends on the seed alone."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def one(self, items: Sequence[X]) -> X:
        return items[self.rng.randrange(len(items))]

    def some(self, items: Sequence[str], k: int) -> list[str]:
        pool = unique(items)
        return self.rng.sample(pool, min(k, len(pool)))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def between(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


#: A language's writer for one schema: the seeded picker and the prompt's inputs in, the object out.
Builder = Callable[[Picker, PromptInputs], BaseModel]
#: Fills a template of the language's banks with slot values already chosen.
Filler = Callable[[str], str]


def builders(
    brief: Callable[[Picker, PromptInputs], WorldBrief],
    batch: Callable[[Picker, PromptInputs], CharacterBatchPlan],
    profile: Callable[[Picker, PromptInputs], CharacterProfile],
    avatar: Callable[[Picker, PromptInputs], AvatarPrompt],
    post: Callable[[Picker, PromptInputs], PostDraft],
) -> dict[type[BaseModel], Builder]:
    """A language's builders by schema: every language writes every schema."""
    return {
        WorldBrief: brief,
        CharacterBatchPlan: batch,
        CharacterProfile: profile,
        AvatarPrompt: avatar,
        PostDraft: post,
    }


class Vocabulary(Protocol):
    """The banks the shared shapes draw from; each language's vocabulary module is one."""

    @property
    def SUMMARIES(self) -> Sequence[str]: ...
    @property
    def SETTINGS(self) -> Sequence[str]: ...
    @property
    def TONES(self) -> Sequence[str]: ...
    @property
    def THEMES(self) -> Sequence[str]: ...
    @property
    def MOTIFS(self) -> Sequence[str]: ...
    @property
    def OCCUPATIONS(self) -> Sequence[str]: ...
    @property
    def HOOKS(self) -> Sequence[str]: ...
    @property
    def INTERESTS(self) -> Sequence[str]: ...
    @property
    def TRAITS(self) -> Sequence[str]: ...
    @property
    def BIOS(self) -> Sequence[str]: ...
    @property
    def SPEAKING_STYLES(self) -> Sequence[tuple[str, str]]: ...
    @property
    def OPENERS(self) -> Sequence[str]: ...
    @property
    def BODIES(self) -> Sequence[str]: ...
    @property
    def SECONDS(self) -> Sequence[str]: ...
    @property
    def CLOSERS(self) -> Sequence[str]: ...
    @property
    def QUESTIONS(self) -> Sequence[str]: ...


# --- world brief ---------------------------------------------------------------------------


def write_brief(pick: Picker, vocab: Vocabulary, words: Sequence[str], fill: Filler) -> WorldBrief:
    """A brief from the world's own ``words`` first, then the banks; ``fill`` knows the
    world's name and its three chosen keywords."""
    # The visual style is for the image model: English, as in every world.
    style = ", ".join(
        [pick.one(en_vocab.MEDIA), pick.one(en_vocab.PALETTES), pick.one(en_vocab.LIGHTING)]
    )
    themes = unique([*words[:3], *pick.some(vocab.THEMES, 4)])[:8]
    motifs = unique([*words[:4], *pick.some(vocab.MOTIFS, 5)])[:12]
    return WorldBrief(
        summary=fit(fill(pick.one(vocab.SUMMARIES)), 300),
        setting=fit(fill(pick.one(vocab.SETTINGS)), 600),
        tone=pick.one(vocab.TONES),
        visual_style=fit(style, 300),
        themes=[fit(t, 60) for t in themes],
        motifs=[fit(m, 60) for m in motifs],
    )


# --- characters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Naming:
    """How a language draws display names."""

    #: A first name and a surname that agree (in gender, where the language has one).
    person: Callable[[Picker], tuple[str, str]]
    #: The banks a numbered name is drawn from once a world has used up the pairs.
    first_names: Sequence[str]
    surnames: Sequence[str]


def unused_name(
    pick: Picker, naming: Naming, theme_word: Callable[[], str], taken: set[str]
) -> str:
    """A display name not yet used in the world (compared case-insensitively): mostly a first
    name and a surname, sometimes a handle made of a first name and a theme word."""
    for _ in range(200):
        first, surname = naming.person(pick)
        name = f"{first.lower()}.{theme_word()}" if pick.chance(0.15) else f"{first} {surname}"
        name = fit(name, DISPLAY_NAME_MAX)
        if name.casefold() not in taken:
            return name
    # The banks hold thousands of pairs; a world this full gets numbered names instead.
    base = f"{pick.one(naming.first_names)} {pick.one(naming.surnames)}"
    number = 2
    while f"{base} {number}".casefold() in taken:
        number += 1
    return f"{base} {number}"


def plan_batch(
    pick: Picker,
    inputs: PromptInputs,
    occupations: Sequence[str],
    name: Callable[[set[str]], str],
    role_and_hook: Callable[[str, str], tuple[str, str]],
) -> CharacterBatchPlan:
    """New characters, each with a name not taken (``name`` is given the taken ones) and,
    while the bank lasts, an occupation no earlier character has; ``role_and_hook`` writes
    a character's role and hook from its occupation and name."""
    count = max(1, min(inputs.count or CHARACTER_BATCH_MAX, CHARACTER_BATCH_MAX))
    taken = {c.display_name.casefold() for c in inputs.earlier}
    used_jobs = " ".join(c.role for c in inputs.earlier)
    fresh_jobs = [j for j in occupations if j not in used_jobs] or list(occupations)
    jobs = pick.some(fresh_jobs, count)
    concepts: list[CharacterConcept] = []
    for i in range(count):
        display_name = name(taken)
        taken.add(display_name.casefold())
        role, hook = role_and_hook(jobs[i % len(jobs)], display_name)
        concepts.append(
            CharacterConcept(display_name=display_name, role=fit(role, 120), hook=fit(hook, 240))
        )
    return CharacterBatchPlan(characters=concepts)


def concept_for(
    pick: Picker, inputs: PromptInputs, batch: Callable[[Picker, PromptInputs], CharacterBatchPlan]
) -> CharacterConcept:
    """The concept a profile is written for; asked without a plan, one the language's
    ``batch`` invents."""
    if inputs.concept is not None:
        return inputs.concept
    return batch(pick, PromptInputs(world=inputs.world, count=1)).characters[0]


def interests_of(pick: Picker, vocab: Vocabulary, theme_word: str) -> list[str]:
    """A character's interests: one of the world's own words, then three of the bank's."""
    return unique([theme_word, *pick.some(vocab.INTERESTS, 3)])


def main_interest(interests: Sequence[str]) -> str:
    """The interest a profile's sentences are about: the first one from the bank."""
    return interests[1] if len(interests) > 1 else interests[0]


def speaking_style(pick: Picker, vocab: Vocabulary) -> str:
    """A speaking style's description (its voice is found again from it by ``voice_of``)."""
    _, description = pick.one(vocab.SPEAKING_STYLES)
    return description


def profile_of(
    concept: CharacterConcept,
    bio: str,
    personality: str,
    interests: Sequence[str],
    style: str,
    appearance: str,
) -> CharacterProfile:
    """The profile from its written parts, each fitted to the schema's limits."""
    return CharacterProfile(
        display_name=concept.display_name,
        bio=fit(bio, 300),
        personality=fit(personality, 400),
        interests=[fit(i, 60) for i in interests[:8]],
        speaking_style=style,
        appearance=fit(cap(appearance), 500),
    )


# --- posts ---------------------------------------------------------------------------------


def voice_of(profile: CharacterProfile | None, styles: Sequence[tuple[str, str]]) -> str:
    """The caption voice: the profile's style if it is one of ``styles``, else fixed per
    name."""
    if profile is None:
        return "plain"
    for voice, description in styles:
        if profile.speaking_style == description:
            return voice
    index = sum(profile.display_name.encode("utf-8")) % len(styles)
    return styles[index][0]


def speak(voice: str, text: str, pick: Picker, name: str, question: Callable[[], str]) -> str:
    """A caption in the character's voice (``question`` picks one for the "questions" voice)."""
    if voice == "lower":
        return text.lower()
    if voice == "emoji":
        return f"{text} {pick.one(en_vocab.EMOJI)}{pick.one(en_vocab.EMOJI)}"
    if voice == "formal":
        return f"{text} — {name[:1].upper()}."
    if voice == "excited":
        return text.replace(".", "!").rstrip("!") + "!!"
    if voice == "poetic":
        return text.rstrip(".") + "…"
    if voice == "questions":
        return f"{text} {question()}"
    if voice == "terse":
        return " ".join(s.strip().rstrip(".") + "." for s in text.split(".") if s.strip())
    return text


def write_caption(
    pick: Picker,
    vocab: Vocabulary,
    fill: Filler,
    profile: CharacterProfile | None,
    name: str,
    *,
    lowercase_after_colon: bool,
) -> str:
    """A caption of an opener, a body, maybe a second thought and a closer, in the author's
    voice; ``name`` signs it. Where the language continues a sentence after a colon in
    lowercase (``lowercase_after_colon``), the body after an opener ending in one does."""
    parts = [fill(pick.one(vocab.OPENERS)), fill(pick.one(vocab.BODIES))]
    if pick.chance(0.6):
        parts.append(fill(pick.one(vocab.SECONDS)))
    parts.append(fill(pick.one(vocab.CLOSERS)))
    if lowercase_after_colon and parts[0].endswith(":"):
        parts[1] = parts[1][:1].lower() + parts[1][1:]
    text = " ".join(p for p in parts if p)

    def question() -> str:
        return fill(pick.one(vocab.QUESTIONS))

    return speak(voice_of(profile, vocab.SPEAKING_STYLES), text, pick, name, question)


def fresh_caption(write: Callable[[], str], recent: Iterable[str]) -> str:
    """A caption from ``write`` that is not one of the character's latest posts, if five more
    tries find one."""
    said = {p.casefold() for p in recent}
    caption = write()
    for _ in range(5):
        if caption.casefold() not in said:
            break
        caption = write()
    return caption


def choose_tags(
    pick: Picker,
    mentioned: Sequence[str],
    words: Sequence[str],
    profile: CharacterProfile | None,
    world_name: str,
    fallback: str,
) -> list[str]:
    """Two to six tags: the theme words the caption ``mentioned``, two more of the world's
    ``words``, two of the author's interests and the world's name; ``fallback`` if none
    makes a tag."""
    candidates = [*mentioned, *pick.some(words, 2)]
    if profile:
        candidates += pick.some(profile.interests, 2)
    candidates.append(world_name)
    tags = unique(t for t in (normalize_tag(c) for c in candidates) if t)
    return tags[: pick.between(2, 6)] or [fallback]
