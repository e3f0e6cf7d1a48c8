"""The offline writer in English: its theme words, names and templates, and the image
prompts, which are English in every language (image models read English best).

The shape of each object, shared with the other languages, is in
:mod:`generia_pipelines.generation.offline_common`.

See :mod:`generia_pipelines.generation.offline` for the backend's contract.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from generia_pipelines.generation import offline_common as common
from generia_pipelines.generation import offline_vocab as vocab
from generia_pipelines.generation.language import ENGLISH, script_of
from generia_pipelines.generation.offline_common import Picker, cap, fit, unique
from generia_pipelines.generation.prompts import PromptInputs
from generia_pipelines.generation.schemas import (
    CAPTION_MAX,
    IMAGE_PROMPT_MAX,
    AvatarPrompt,
    CharacterBatchPlan,
    CharacterProfile,
    PostDraft,
    WorldBrief,
)

_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)
_MIN_WORD = 4
_KEYWORDS_MAX = 24
_FALLBACK_KEYWORDS = ("harbour", "market", "lanterns", "garden", "bridge", "festival")
_NEGATIVE_IMAGE = "no text, no watermark"


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
    return common.write_brief(pick, vocab, theme.keywords, lambda template: _fill(template, values))


# --- characters ----------------------------------------------------------------------------

#: English names do not agree with anything: any first name goes with any surname.
NAMING = common.Naming(
    person=lambda pick: (pick.one(vocab.FIRST_NAMES), pick.one(vocab.LAST_NAMES)),
    first_names=vocab.FIRST_NAMES,
    surnames=vocab.LAST_NAMES,
)


def character_batch(pick: Picker, inputs: PromptInputs) -> CharacterBatchPlan:
    theme = Theme.of(inputs)

    def new_name(taken: set[str]) -> str:
        return common.unused_name(pick, NAMING, lambda: pick.one(theme.things), taken)

    def role_and_hook(job: str, _display_name: str) -> tuple[str, str]:
        values = _slots(pick, theme)
        return f"{job} in {values['place']}", _fill(pick.one(vocab.HOOKS), values)

    return common.plan_batch(pick, inputs, vocab.OCCUPATIONS, new_name, role_and_hook)


def _occupation_of(role: str) -> str:
    return role.split(" in ", 1)[0].strip() or "local"


def character_profile(pick: Picker, inputs: PromptInputs) -> CharacterProfile:
    theme = Theme.of(inputs)
    concept = common.concept_for(pick, inputs, character_batch)
    interests = common.interests_of(pick, vocab, pick.one(theme.keywords))
    traits = pick.some(vocab.TRAITS, 3)
    values = _slots(
        pick,
        theme,
        occupation=_occupation_of(concept.role),
        interest=common.main_interest(interests),
        trait=traits[0],
    )
    style = common.speaking_style(pick, vocab)
    appearance = appearance_text(pick, values)
    personality = (
        f"{cap(traits[0])} and {traits[1]}, with a {traits[2]} streak; "
        f"{pick.one(vocab.VALUES)}. {cap(concept.hook)}."
    )
    bio = _fill(pick.one(vocab.BIOS), values)
    return common.profile_of(concept, bio, personality, interests, style, appearance)


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


def _caption(pick: Picker, theme: Theme, profile: CharacterProfile | None) -> str:
    interests = list(profile.interests) if profile else list(vocab.INTERESTS)
    values = _slots(pick, theme, interest=pick.one(interests))
    name = profile.display_name if profile else theme.name
    return common.write_caption(
        pick,
        vocab,
        lambda template: _fill(template, values),
        profile,
        name,
        lowercase_after_colon=False,
    )


def post_draft(pick: Picker, inputs: PromptInputs) -> PostDraft:
    theme = Theme.of(inputs)
    profile = inputs.profile
    caption = common.fresh_caption(lambda: _caption(pick, theme, profile), inputs.recent_posts)
    image = post_image(pick, theme, profile, profile.display_name if profile else "")
    mentioned = [k for k in theme.keywords if k in caption.lower()]
    return PostDraft(
        caption=fit(caption, CAPTION_MAX),
        tags=common.choose_tags(pick, mentioned, theme.keywords, profile, theme.name, "daily_life"),
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


BUILDERS = common.builders(
    world_brief, character_batch, character_profile, avatar_prompt, post_draft
)
