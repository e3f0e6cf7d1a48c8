"""The offline writer in Russian: names, bios, briefs, captions and tags for Russian worlds.

Theme words come from the world's own prompt, name and description, but only its nouns
(pymorphy3 tells them apart from verbs, pronouns and adjectives), and each is put in the
case its slot asks for: "у мостов", "со стеклодувами", "о каналах". Characters get Russian
names; the gender of the name decides the forms of the past tense and of adjectives
("нашёл" / "нашла", "упрямый" / "упрямая"). Image prompts and the appearance are English,
from the English writer (image models read English best). The shape of each object, shared
with English, is in :mod:`generia_pipelines.generation.offline_common`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from generia_pipelines.generation import morphology as morph
from generia_pipelines.generation import offline_common as common
from generia_pipelines.generation import offline_vocab_ru as ru
from generia_pipelines.generation.morphology import NotATerm, Term
from generia_pipelines.generation.offline_common import Picker, cap, fit
from generia_pipelines.generation.offline_en import (
    appearance_text,
    avatar_for,
    image_theme,
    post_image,
)
from generia_pipelines.generation.prompts import PromptInputs
from generia_pipelines.generation.schemas import (
    CAPTION_MAX,
    AvatarPrompt,
    CharacterBatchPlan,
    CharacterProfile,
    PostDraft,
    WorldBrief,
)

_KEYWORDS_MAX = 24
#: Nouns for a world whose texts give fewer than three (a terse or foreign-named world).
_FALLBACK_TEXT = "гавань, рынок, фонари, сад, мост, праздник"
#: The occupation when a role is not one this writer made (and cannot be declined).
_ANY_OCCUPATION = "мастер на все руки"
_SLOT = re.compile(
    r"(?:(?<![\w-])(?P<prep>[СсВвОо]) )?\{(?P<name>\w+)(?::(?P<case>\w+))?(?::(?P<number>\w+))?\}"
)
_GENDERED = re.compile(r"\[([^|\]]*)\|([^\]]*)\]")
_NAME_PARTS = re.compile(r"[\s._]+")
_ORIGIN = re.compile(r" (?:из|с|со) ")

Value = str | Term


def fill(template: str, values: Mapping[str, Value], feminine: bool) -> str:
    """Fill a template's slots (``{kw:gent}``, ``{Thing:accs}``, ``{time}``) with the forms
    they ask for, fix the prepositions before them, and pick each ``[masc|fem]`` form."""

    def slot(match: re.Match[str]) -> str:
        name = match["name"]
        value = values[name[:1].lower() + name[1:]]
        text = (
            value.form(match["case"] or "nomn", match["number"])
            if isinstance(value, Term)
            else value
        )
        if name[:1].isupper():
            text = cap(text)
        preposition = match["prep"]
        return f"{morph.preposition_before(preposition, text)} {text}" if preposition else text

    text = _SLOT.sub(slot, template)
    return _GENDERED.sub(lambda m: m[2] if feminine else m[1], text)


@functools.lru_cache(maxsize=512)
def _theme_terms(texts: tuple[str, ...], borrowed: tuple[str, ...]) -> tuple[Term, ...]:
    found = morph.theme_nouns(list(texts), ru.STOP_LEMMAS, _KEYWORDS_MAX)
    if len(found) < 3:  # a terse world: borrow from its brief, else from the fallback
        known = {t.text for t in found}
        extra = morph.theme_nouns([*borrowed, _FALLBACK_TEXT], ru.STOP_LEMMAS, _KEYWORDS_MAX)
        found += [t for t in extra if t.text not in known][: 3 - len(found)]
    return tuple(found)


@dataclass(frozen=True)
class Theme:
    """A Russian world's name and its theme nouns, each declinable."""

    name: str
    terms: tuple[Term, ...]

    @classmethod
    def of(cls, inputs: PromptInputs) -> Theme:
        world, brief = inputs.world, inputs.brief
        borrowed = (*brief.motifs, *brief.themes) if brief else ()
        terms = _theme_terms((world.prompt, world.description, world.name), borrowed)
        return cls(world.name.strip() or "этот мир", terms)

    @property
    def words(self) -> list[str]:
        """The theme nouns as the world's prompt has them (nominative, its number)."""
        return [t.form("nomn") for t in self.terms]

    def pick(self, pick: Picker) -> Term:
        return pick.one(self.terms)


def feminine(display_name: str) -> bool:
    """Whether a display name is a woman's: by this writer's own name lists, else by the
    analyzer's reading of the first name; a name neither knows is taken as a man's."""
    first = _NAME_PARTS.split(display_name.strip(), maxsplit=1)[0].capitalize()
    if first in ru.FEMALE_NAMES:
        return True
    if first in ru.MALE_NAMES:
        return False
    for reading in morph.parses(first):
        if "Name" in reading.tag.grammemes:
            return "femn" in reading.tag.grammemes
    return False


def feminine_surname(surname: str) -> str:
    """The wife's or daughter's form of a surname: Соколов → Соколова, Полянский →
    Полянская, Мостовой → Мостовая; Черных and Бондаренко stay as they are."""
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    if surname.endswith(("ский", "цкий")):
        return surname[:-2] + "ая"
    if surname.endswith(("ой", "ый")):
        return surname[:-2] + "ая"
    return surname


def _slots(pick: Picker, theme: Theme, **extra: Value) -> dict[str, Value]:
    values: dict[str, Value] = {
        "kw": theme.pick(pick),
        "thing": morph.with_adjective(pick.one(ru.ADJECTIVES), pick.one(ru.THINGS)),
        "time": pick.one(ru.TIMES),
        "action": pick.one(ru.ACTIONS),
        "feeling": pick.one(ru.FEELINGS),
        "interest": morph.term(pick.one(ru.INTERESTS)),
        "n": str(pick.between(2, 40)),
        **extra,
    }
    values["place"] = fill(pick.one(ru.PLACES), {"kw": theme.pick(pick)}, feminine=False)
    return values


def _three(pick: Picker, theme: Theme) -> list[Term]:
    chosen = pick.some([t.text for t in theme.terms], 3)
    terms = [t for text in chosen for t in theme.terms if t.text == text]
    while len(terms) < 3:
        terms.append(theme.pick(pick))
    return terms


# --- world brief ---------------------------------------------------------------------------


def world_brief(pick: Picker, inputs: PromptInputs) -> WorldBrief:
    theme = Theme.of(inputs)
    kw1, kw2, kw3 = _three(pick, theme)
    values: dict[str, Value] = {"name": theme.name, "kw1": kw1, "kw2": kw2, "kw3": kw3}
    return common.write_brief(pick, ru, theme.words, lambda template: fill(template, values, False))


# --- characters ----------------------------------------------------------------------------


def _person(pick: Picker) -> tuple[str, str]:
    """A first name of either gender and the surname in the same gender."""
    woman = pick.chance(0.5)
    first = pick.one(ru.FEMALE_NAMES if woman else ru.MALE_NAMES)
    surname = pick.one(ru.SURNAMES)
    return first, feminine_surname(surname) if woman else surname


#: Russian names agree in gender; a full world's numbered names are men's.
NAMING = common.Naming(person=_person, first_names=ru.MALE_NAMES, surnames=ru.SURNAMES)


def character_batch(pick: Picker, inputs: PromptInputs) -> CharacterBatchPlan:
    theme = Theme.of(inputs)

    def new_name(taken: set[str]) -> str:
        return common.unused_name(pick, NAMING, lambda: theme.pick(pick).form("nomn"), taken)

    def role_and_hook(job: str, display_name: str) -> tuple[str, str]:
        values = _slots(pick, theme)
        hook = fill(pick.one(ru.HOOKS), values, feminine(display_name))
        return f"{job} {values['place']}", hook

    return common.plan_batch(pick, inputs, ru.OCCUPATIONS, new_name, role_and_hook)


def occupation_of(role: str) -> Term:
    """The occupation a role starts with ("картограф" of "картограф из порта у мостов")."""
    job = _ORIGIN.split(role, maxsplit=1)[0].strip()
    try:
        return morph.term(job)
    except NotATerm:
        return morph.term(_ANY_OCCUPATION)


def _interest(text: str) -> Term:
    """An interest as a slot declines it; one this writer cannot decline becomes one of its
    own (a profile written by a model may list anything)."""
    try:
        return morph.term(text)
    except NotATerm:
        return morph.term(ru.INTERESTS[sum(text.encode("utf-8")) % len(ru.INTERESTS)])


def character_profile(pick: Picker, inputs: PromptInputs) -> CharacterProfile:
    theme = Theme.of(inputs)
    concept = common.concept_for(pick, inputs, character_batch)
    woman = feminine(concept.display_name)
    gender = "femn" if woman else "masc"
    interests = common.interests_of(pick, ru, theme.pick(pick).form("nomn"))
    traits = [morph.adjective(t, gender) for t in pick.some(ru.TRAITS, 3)]
    values = _slots(
        pick,
        theme,
        occupation=occupation_of(concept.role),
        interest=_interest(common.main_interest(interests)),
        trait=traits[0],
    )
    style = common.speaking_style(pick, ru)
    # The appearance is for the image model: English, its details from English words.
    appearance = appearance_text(pick, {"kw": pick.one(image_theme(inputs).keywords)})
    value = fill(pick.one(ru.VALUES), values, woman)
    personality = (
        f"{cap(traits[0])} и {traits[1]}, порой {traits[2]}; {value}. {cap(concept.hook)}."
    )
    bio = fill(pick.one(ru.BIOS), values, woman)
    return common.profile_of(concept, bio, personality, interests, style, appearance)


def avatar_prompt(pick: Picker, inputs: PromptInputs) -> AvatarPrompt:
    return avatar_for(pick, image_theme(inputs), inputs.profile)


# --- posts ---------------------------------------------------------------------------------


def _caption(pick: Picker, theme: Theme, profile: CharacterProfile | None) -> str:
    interests: Sequence[str] = list(profile.interests) if profile else ru.INTERESTS
    values = _slots(pick, theme, interest=_interest(pick.one(interests)))
    woman = feminine(profile.display_name) if profile else False
    name = profile.display_name if profile else theme.name
    return common.write_caption(
        pick,
        ru,
        lambda template: fill(template, values, woman),
        profile,
        name,
        lowercase_after_colon=True,  # after a colon a Russian sentence goes on in lowercase
    )


def _mentioned(theme: Theme, caption: str) -> list[str]:
    """The theme nouns a caption has in any of their forms, as the world's prompt has them."""
    said = caption.lower()
    return [t.form("nomn") for t in theme.terms if any(form in said for _, _, form in t.forms)]


def post_draft(pick: Picker, inputs: PromptInputs) -> PostDraft:
    theme = Theme.of(inputs)
    profile = inputs.profile
    caption = common.fresh_caption(lambda: _caption(pick, theme, profile), inputs.recent_posts)
    tags = common.choose_tags(
        pick, _mentioned(theme, caption), theme.words, profile, theme.name, "повседневность"
    )
    return PostDraft(
        caption=fit(caption, CAPTION_MAX),
        tags=tags,
        image_prompt=post_image(pick, image_theme(inputs), profile, "the author"),
    )


BUILDERS = common.builders(
    world_brief, character_batch, character_profile, avatar_prompt, post_draft
)
