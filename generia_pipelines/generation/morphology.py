"""Russian morphology for the offline writer: which words of a prompt are nouns, and their
forms in every case, through pymorphy3 and its bundled dictionary (no network).

The analyzer costs about a quarter of a second to load, so it is built once per process,
and only when a Russian world is written. A ``Term`` (a noun, or a noun phrase such as
"старый фонарь" or "банка мёда") is inflected once, when it is made: templates then ask for
"genitive plural" and get a ready string, and a word that cannot be put in every case and
number is never offered to a template.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

CASES = ("nomn", "gent", "datv", "accs", "ablt", "loct")
NUMBERS = ("sing", "plur")
#: Noun grammemes that disqualify a word as a theme: names of people, abbreviations,
#: initials.
_NOT_THEMES = frozenset({"Name", "Surn", "Patr", "Abbr", "Init"})
_ADJECTIVES = frozenset({"ADJF", "PRTF"})
_CYRILLIC_WORD = re.compile(r"[а-яёА-ЯЁ]+(?:-[а-яёА-ЯЁ]+)*")
_VOWELS = frozenset("аеёиоуыэюя")


@functools.cache
def analyzer() -> Any:
    """pymorphy3's Russian analyzer, loaded on first use and kept for the process."""
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


def parses(word: str) -> list[Any]:
    """Every reading of a word, the likeliest first."""
    return list(analyzer().parse(word))


def part_of_speech(word: str) -> str | None:
    """The part of speech of the likeliest reading (``NOUN``, ``VERB``, ``NPRO``...)."""
    found = parses(word)
    return str(found[0].tag.POS) if found and found[0].tag.POS else None


class NotATerm(ValueError):
    """A phrase the writer cannot decline (no noun, or a form pymorphy cannot make)."""


@dataclass(frozen=True)
class Term:
    """A noun phrase in all its forms; ``number`` is the one the world uses it in."""

    text: str
    number: str
    gender: str
    animate: bool
    forms: tuple[tuple[str, str, str], ...]

    def form(self, case: str, number: str | None = None) -> str:
        """The phrase in ``case`` (``gent``), in its own number unless one is given."""
        wanted = number or self.number
        for form_case, form_number, text in self.forms:
            if form_case == case and form_number == wanted:
                return text
        raise KeyError(f"{self.text!r} has no {case} {wanted} form")


def _reading(word: str, want: frozenset[str], pos: frozenset[str]) -> Any:
    """The likeliest reading of ``word`` with part of speech in ``pos`` carrying ``want``."""
    for reading in parses(word):
        if reading.tag.POS in pos and want <= reading.tag.grammemes:
            return reading
    return None


def _adjective_form(adjective: Any, gender: str, animate: bool, case: str, number: str) -> str:
    wanted = {case, number}
    if number == "sing":
        wanted.add(gender)
    if case == "accs" and (number == "plur" or gender == "masc"):
        # "вижу старого моряка" but "вижу старый мост"; feminine and neuter do not care
        wanted.add("anim" if animate else "inan")
    made = adjective.inflect(wanted)
    if made is None:
        raise NotATerm(f"cannot put {adjective.word!r} in {sorted(wanted)}")
    return str(made.word)


def _gender(noun: Any) -> str:
    for gender in ("masc", "femn", "neut"):
        if gender in noun.tag.grammemes:
            return gender
    return "masc"  # common gender ("сирота") agrees as masculine by default


def _decline(
    adjectives: list[Any], head: Any, rest: list[str], numbers: tuple[str, ...] = NUMBERS
) -> tuple[tuple[str, str, str], ...]:
    forms = []
    for number in numbers:
        for case in CASES:
            noun = head.inflect({case, number})
            if noun is None:
                raise NotATerm(f"cannot put {head.word!r} in {case} {number}")
            animate = "anim" in head.tag.grammemes
            words = [_adjective_form(a, _gender(head), animate, case, number) for a in adjectives]
            forms.append((case, number, " ".join([*words, str(noun.word), *rest])))
    return tuple(forms)


@functools.lru_cache(maxsize=4096)
def term(text: str) -> Term:
    """A noun phrase written in the nominative ("старая карта", "банка мёда", "часы"), in
    every case of its own number: leading adjectives agree with the first noun, the words
    after it stay as they are."""
    words = text.split()
    adjectives: list[Any] = []
    for index, word in enumerate(words):
        noun = _reading(word, frozenset({"nomn"}), frozenset({"NOUN"}))
        if noun is not None and not (index + 1 < len(words) and _is_adjective(word)):
            number = "plur" if "plur" in noun.tag.grammemes else "sing"
            forms = _decline(adjectives, noun, words[index + 1 :], (number,))
            made = Term(text, number, _gender(noun), "anim" in noun.tag.grammemes, forms)
            return _checked(made, text)
        adjective = _reading(word, frozenset({"nomn"}), _ADJECTIVES)
        if adjective is None:
            raise NotATerm(f"{text!r}: {word!r} is neither an adjective nor a noun")
        adjectives.append(adjective)
    raise NotATerm(f"{text!r} has no noun")


def _is_adjective(word: str) -> bool:
    """Whether the likeliest reading is an adjective ("портной" reads as both)."""
    return part_of_speech(word) in _ADJECTIVES


def _checked(made: Term, text: str) -> Term:
    if made.form("nomn", made.number).lower() != text.lower():
        # pymorphy read the phrase differently (another lexeme): its forms would be wrong.
        raise NotATerm(f"{text!r} reads back as {made.form('nomn', made.number)!r}")
    return made


def noun_term(reading: Any) -> Term:
    """The theme a noun of a prompt stands for, in the number the prompt used it in, with
    the forms of both numbers (a template may ask for "every one of the bridges")."""
    number = "plur" if "plur" in reading.tag.grammemes else "sing"
    lemma = reading.inflect({"nomn", number})
    if lemma is None:
        raise NotATerm(f"cannot put {reading.word!r} in the nominative")
    forms = _decline([], lemma, [])
    return Term(str(lemma.word), number, _gender(lemma), "anim" in lemma.tag.grammemes, forms)


def theme_nouns(texts: list[str], stop_lemmas: frozenset[str], limit: int) -> list[Term]:
    """The nouns of a world's texts, in order of first appearance, each in every case.

    A word counts when its likeliest reading is a common noun: verbs ("делят"), pronouns
    and determiners ("одни", "те"), adjectives ("ночные"), particles and names of people
    are left out, as are ``stop_lemmas`` (words every world has: "мир", "люди")."""
    found: dict[str, Term] = {}
    for text in texts:
        for match in _CYRILLIC_WORD.finditer(text or ""):
            word = match.group(0).lower()
            readings = parses(word)
            if not readings or not analyzer().word_is_known(word):
                continue  # a guessed reading of an unknown word is not worth trusting
            best = readings[0]
            if best.tag.POS != "NOUN" or best.tag.grammemes & _NOT_THEMES:
                continue
            if len(best.normal_form) < 3 or best.normal_form in stop_lemmas:
                continue
            if best.normal_form in found:
                continue
            try:
                found[best.normal_form] = noun_term(best)
            except NotATerm:
                continue
            if len(found) >= limit:
                return list(found.values())
    return list(found.values())


@functools.lru_cache(maxsize=1024)
def adjective(lemma: str, gender: str, case: str = "nomn", number: str = "sing") -> str:
    """An adjective ("упрямый") agreeing with a person or thing of ``gender``."""
    reading = _reading(lemma, frozenset({"nomn"}), _ADJECTIVES)
    if reading is None:
        raise NotATerm(f"{lemma!r} is not an adjective")
    wanted = {case, number} | ({gender} if number == "sing" else set())
    made = reading.inflect(wanted)
    if made is None:
        raise NotATerm(f"cannot put {lemma!r} in {sorted(wanted)}")
    return str(made.word)


@functools.lru_cache(maxsize=4096)
def with_adjective(adjective_lemma: str, phrase: str) -> Term:
    """``phrase`` with an adjective in front ("потрёпанный" + "карта" → "потрёпанная карта"),
    agreeing with the phrase's noun in every form (not read again: "кривая" alone would be
    the noun "curve")."""
    head = term(phrase)
    reading = _reading(adjective_lemma, frozenset({"nomn"}), _ADJECTIVES)
    if reading is None:
        raise NotATerm(f"{adjective_lemma!r} is not an adjective")
    forms = tuple(
        (
            case,
            number,
            f"{_adjective_form(reading, head.gender, head.animate, case, number)} {text}",
        )
        for case, number, text in head.forms
    )
    return Term(forms[0][2], head.number, head.gender, head.animate, forms)


def preposition_before(preposition: str, word: str) -> str:
    """The form of a preposition the next word asks for: "со стеклодувами", "во дворе",
    "об островах" (and their capitalised forms)."""
    low, first = preposition.lower(), word[:1].lower()
    second = word[1:2].lower()
    consonant_next = bool(second) and second.isalpha() and second not in _VOWELS
    if low == "с" and first in "сзшжщ" and consonant_next:
        extended = "со"
    elif low == "в" and first in "вф" and consonant_next:
        extended = "во"
    elif low == "о" and first in "аиоуыэ":
        extended = "об"
    else:
        return preposition
    return extended.capitalize() if preposition[:1].isupper() else extended
