"""The offline writer in English, and what every language shares: the seeded picker, the
fitting of texts to the schema's limits, caption voices and the (English) image prompts.

See :mod:`generia_pipelines.generation.offline` for the backend's contract.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from generia_pipelines.generation import offline_vocab as vocab
from generia_pipelines.generation.language import ENGLISH, script_of
from generia_pipelines.generation.prompts import PromptInputs
from generia_pipelines.generation.schemas import (
    CAPTION_MAX,
    CHARACTER_BATCH_MAX,
    DISPLAY_NAME_MAX,
    IMAGE_PROMPT_MAX,
    AvatarPrompt,
    CharacterBatchPlan,
    CharacterConcept,
    CharacterProfile,
    PostDraft,
    WorldBrief,
    normalize_tag,
)

_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)
_MIN_WORD = 4
_KEYWORDS_MAX = 24
_FALLBACK_KEYWORDS = ("harbour", "market", "lanterns", "garden", "bridge", "festival")
_NEGATIVE_IMAGE = "no text, no watermark"

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


def keywords(texts: Iterable[str]) -> list[str]:
    """Content words of a world's texts, in order of first appearance: English ones only
    (Latin letters), since they are spliced into English sentences."""
    words: list[str] = []
    for text in texts:
        for match in _WORD.finditer(text or ""):
            word = match.group(0).lower()
            if len(word) < _MIN_WORD or word in vocab.STOPWORDS:
                continue
            if all(script_of(c) == ENGLISH.script for c in word if c.isalpha()):
                words.append(word)
    return unique(words)[:_KEYWORDS_MAX]


#: Endings that mark a word as an adjective, adverb or participle rather than a thing; the
#: offline writer puts theme words where nouns go ("born near the {kw}").
_NOT_NOUN_ENDINGS = ("ing", "ed", "ly", "ous", "ful", "ive", "ic", "al", "less", "ish", "id")


def noun_like(words: Iterable[str]) -> list[str]:
    """The words that can stand where a noun goes, by a cheap suffix heuristic."""
    return [w for w in words if "-" not in w and not w.endswith(_NOT_NOUN_ENDINGS)]


@dataclass(frozen=True)
class Theme:
    """What makes a world recognisable: its own words first, then its brief's motifs."""

    name: str
    keywords: tuple[str, ...]
    motifs: tuple[str, ...]
    visual_style: str

    @property
    def things(self) -> tuple[str, ...]:
        """Theme words usable as nouns (all keywords when none look like one)."""
        return tuple(noun_like(self.keywords)) or self.keywords

    @classmethod
    def of(cls, inputs: PromptInputs) -> Theme:
        world, brief = inputs.world, inputs.brief
        found = keywords([world.prompt, world.description, world.name])
        if len(found) < 3 and brief is not None:  # a terse world: borrow from its brief
            found = unique([*found, *keywords([*brief.motifs, *brief.themes])])
        found = found or list(_FALLBACK_KEYWORDS)
        motifs = unique([*(brief.motifs if brief else ()), *found[:6]])
        style = brief.visual_style if brief else ""
        return cls(world.name.strip() or "this world", tuple(found), tuple(motifs), style)


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


_A_BEFORE_VOWEL = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


def _fill(template: str, values: dict[str, str]) -> str:
    """Fill ``{slot}`` and ``{Slot}`` (capitalised) placeholders of a word-bank template."""
    full = dict(values)
    full.update({cap(k): cap(v) for k, v in values.items()})
    return _A_BEFORE_VOWEL.sub(r"\1n ", template.format_map(full))


def _slots(pick: Picker, theme: Theme, **extra: str) -> dict[str, str]:
    kw = pick.one(theme.things)
    values = {
        "kw": kw,
        "thing": pick.one(vocab.THINGS),
        "adj": pick.one(vocab.ADJECTIVES),
        "time": pick.one(vocab.TIMES),
        "action": pick.one(vocab.ACTIONS),
        "feeling": pick.one(vocab.FEELINGS),
        "interest": pick.one(vocab.INTERESTS),
        "n": str(pick.between(2, 40)),
        **extra,
    }
    values["place"] = _fill(pick.one(vocab.PLACES), {"kw": pick.one(theme.things)})
    return values


# --- world brief ---------------------------------------------------------------------------


def world_brief(pick: Picker, inputs: PromptInputs) -> WorldBrief:
    theme = Theme.of(inputs)
    kws = pick.some(theme.keywords, 3)
    while len(kws) < 3:
        kws.append(pick.one(_FALLBACK_KEYWORDS))
    values = {"name": theme.name, "kw1": kws[0], "kw2": kws[1], "kw3": kws[2]}
    style = ", ".join([pick.one(vocab.MEDIA), pick.one(vocab.PALETTES), pick.one(vocab.LIGHTING)])
    themes = unique([*theme.keywords[:3], *pick.some(vocab.THEMES, 4)])[:8]
    motifs = unique([*theme.keywords[:4], *pick.some(vocab.MOTIFS, 5)])[:12]
    return WorldBrief(
        summary=fit(_fill(pick.one(vocab.SUMMARIES), values), 300),
        setting=fit(_fill(pick.one(vocab.SETTINGS), values), 600),
        tone=pick.one(vocab.TONES),
        visual_style=fit(style, 300),
        themes=[fit(t, 60) for t in themes],
        motifs=[fit(m, 60) for m in motifs],
    )


# --- characters ----------------------------------------------------------------------------


def _new_name(pick: Picker, theme: Theme, taken: set[str]) -> str:
    """A display name not yet used in the world (compared case-insensitively)."""
    for _ in range(200):
        first, last = pick.one(vocab.FIRST_NAMES), pick.one(vocab.LAST_NAMES)
        if pick.chance(0.15):
            name = f"{first.lower()}.{pick.one(theme.things)}"
        else:
            name = f"{first} {last}"
        name = fit(name, DISPLAY_NAME_MAX)
        if name.casefold() not in taken:
            return name
    # The banks hold ~8000 pairs; a world this full gets numbered names instead.
    base = f"{pick.one(vocab.FIRST_NAMES)} {pick.one(vocab.LAST_NAMES)}"
    number = 2
    while f"{base} {number}".casefold() in taken:
        number += 1
    return f"{base} {number}"


def character_batch(pick: Picker, inputs: PromptInputs) -> CharacterBatchPlan:
    theme = Theme.of(inputs)
    count = max(1, min(inputs.count or CHARACTER_BATCH_MAX, CHARACTER_BATCH_MAX))
    taken = {c.display_name.casefold() for c in inputs.earlier}
    used_jobs = " ".join(c.role for c in inputs.earlier)
    fresh_jobs = [j for j in vocab.OCCUPATIONS if j not in used_jobs] or list(vocab.OCCUPATIONS)
    jobs = pick.some(fresh_jobs, count)
    concepts: list[CharacterConcept] = []
    for i in range(count):
        name = _new_name(pick, theme, taken)
        taken.add(name.casefold())
        values = _slots(pick, theme)
        job = jobs[i % len(jobs)]
        concepts.append(
            CharacterConcept(
                display_name=name,
                role=fit(f"{job} in {values['place']}", 120),
                hook=fit(_fill(pick.one(vocab.HOOKS), values), 240),
            )
        )
    return CharacterBatchPlan(characters=concepts)


def _occupation_of(role: str) -> str:
    return role.split(" in ", 1)[0].strip() or "local"


def character_profile(pick: Picker, inputs: PromptInputs) -> CharacterProfile:
    theme = Theme.of(inputs)
    concept = inputs.concept
    if concept is None:  # asked without a plan: invent one
        concept = character_batch(pick, PromptInputs(world=inputs.world, count=1)).characters[0]
    interests = unique([pick.one(theme.keywords), *pick.some(vocab.INTERESTS, 3)])
    traits = pick.some(vocab.TRAITS, 3)
    values = _slots(
        pick,
        theme,
        occupation=_occupation_of(concept.role),
        interest=interests[1] if len(interests) > 1 else interests[0],
        trait=traits[0],
    )
    _, style = pick.one(vocab.SPEAKING_STYLES)
    appearance = appearance_text(pick, values)
    personality = (
        f"{cap(traits[0])} and {traits[1]}, with a {traits[2]} streak; "
        f"{pick.one(vocab.VALUES)}. {cap(concept.hook)}."
    )
    return CharacterProfile(
        display_name=concept.display_name,
        bio=fit(_fill(pick.one(vocab.BIOS), values), 300),
        personality=fit(personality, 400),
        interests=[fit(i, 60) for i in interests[:8]],
        speaking_style=style,
        appearance=fit(cap(appearance), 500),
    )


def appearance_text(pick: Picker, values: dict[str, str]) -> str:
    """What an avatar shows, in English for the image model (``values`` fill its details)."""
    return ", ".join(
        [
            f"{pick.one(vocab.AGES)}",
            f"with {pick.one(vocab.HAIR)}",
            f"wearing {pick.one(vocab.CLOTHING)}",
            _fill(pick.one(vocab.DETAILS), values),
        ]
    )


def _style(text: str) -> str:
    return f", {text}" if text else ""


def image_theme(inputs: PromptInputs) -> Theme:
    """The English words the image prompts of a world in another language are made of:
    the English banks' motifs and the brief's visual style (written in English)."""
    brief = inputs.brief
    return Theme(
        inputs.world.name.strip() or "this world",
        _FALLBACK_KEYWORDS,
        tuple(vocab.MOTIFS),
        brief.visual_style if brief else "",
    )


def avatar_prompt(pick: Picker, inputs: PromptInputs) -> AvatarPrompt:
    return avatar_for(pick, Theme.of(inputs), inputs.profile)


def avatar_for(pick: Picker, theme: Theme, profile: CharacterProfile | None) -> AvatarPrompt:
    """The avatar's prompt, in English: the profile's appearance against the theme's motifs."""
    look = profile.appearance if profile else "a local resident"
    backdrop = pick.one(theme.motifs)
    text = (
        f"Square head-and-shoulders portrait of one person. {cap(look).rstrip('.')}. "
        f"{cap(pick.one(vocab.EXPRESSIONS))}, background of {backdrop} near the "
        f"{pick.one(theme.keywords)}{_style(theme.visual_style)}, sharp focus on the face, "
        f"{_NEGATIVE_IMAGE}"
    )
    return AvatarPrompt(prompt=fit(text, IMAGE_PROMPT_MAX))


# --- posts ---------------------------------------------------------------------------------


def voice_of(
    profile: CharacterProfile | None,
    styles: Sequence[tuple[str, str]] = vocab.SPEAKING_STYLES,
) -> str:
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
        return f"{text} {pick.one(vocab.EMOJI)}{pick.one(vocab.EMOJI)}"
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


def _caption(pick: Picker, theme: Theme, profile: CharacterProfile | None) -> str:
    interests = list(profile.interests) if profile else list(vocab.INTERESTS)
    values = _slots(pick, theme, interest=pick.one(interests))
    parts = [_fill(pick.one(vocab.OPENERS), values), _fill(pick.one(vocab.BODIES), values)]
    if pick.chance(0.6):
        parts.append(_fill(pick.one(vocab.SECONDS), values))
    parts.append(_fill(pick.one(vocab.CLOSERS), values))
    text = " ".join(p for p in parts if p)
    name = profile.display_name if profile else theme.name

    def question() -> str:
        return _fill(pick.one(vocab.QUESTIONS), values)

    return speak(voice_of(profile), text, pick, name, question)


def _tags(pick: Picker, theme: Theme, profile: CharacterProfile | None, caption: str) -> list[str]:
    candidates = [k for k in theme.keywords if k in caption.lower()]
    candidates += pick.some(theme.keywords, 2)
    if profile:
        candidates += pick.some(profile.interests, 2)
    candidates.append(theme.name)
    tags = unique(t for t in (normalize_tag(c) for c in candidates) if t)
    return tags[: pick.between(2, 6)] or ["daily_life"]


def post_draft(pick: Picker, inputs: PromptInputs) -> PostDraft:
    theme = Theme.of(inputs)
    profile = inputs.profile
    recent = {p.casefold() for p in inputs.recent_posts}
    caption = _caption(pick, theme, profile)
    for _ in range(5):  # never repeat one of the character's latest posts
        if caption.casefold() not in recent:
            break
        caption = _caption(pick, theme, profile)
    image = post_image(pick, theme, profile, profile.display_name if profile else "")
    return PostDraft(
        caption=fit(caption, CAPTION_MAX),
        tags=_tags(pick, theme, profile, caption),
        image_prompt=image,
    )


def post_image(pick: Picker, theme: Theme, profile: CharacterProfile | None, who: str) -> str:
    """A post's image prompt, in English; ``who`` names the author when they are in frame."""
    scene = (
        f"{cap(pick.one(vocab.SHOTS))} of {pick.one(theme.motifs)} near the "
        f"{pick.one(theme.keywords)}, {pick.one(vocab.TIMES)}, {pick.one(vocab.ADJECTIVES)} mood"
    )
    if profile and pick.chance(0.3):
        scene += f", with {who} in frame: {fit(profile.appearance, 200)}"
    image = f"{scene}{_style(theme.visual_style)}, {_NEGATIVE_IMAGE}"
    return fit(image, IMAGE_PROMPT_MAX)


Builder = Callable[[Picker, PromptInputs], BaseModel]

BUILDERS: dict[type[BaseModel], Builder] = {
    WorldBrief: world_brief,
    CharacterBatchPlan: character_batch,
    CharacterProfile: character_profile,
    AvatarPrompt: avatar_prompt,
    PostDraft: post_draft,
}
