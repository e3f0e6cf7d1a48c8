"""A world's language: which ones the pipeline writes, how one is named, detected and checked.

Only languages that every part can handle are supported: the offline generator has word
banks and grammar for them, and a reply's language is checked by its script (Cyrillic for
Russian, Latin for English), which tells these two apart but would not tell Russian from
Ukrainian or English from Italian. A model backend could write more; claiming them would
mean shipping content nothing has checked.

Image-facing texts (image prompts, the visual style, a character's appearance) stay English
whatever the world's language: image models read English best.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Language:
    """A supported language: its ISO 639-1 code, names, and the script its letters use."""

    code: str
    name: str
    native: str
    #: The first word of the Unicode names of its letters ("CYRILLIC SMALL LETTER A").
    script: str

    @property
    def label(self) -> str:
        return f"{self.code} ({self.name})"


RUSSIAN = Language("ru", "Russian", "русский", "CYRILLIC")
ENGLISH = Language("en", "English", "English", "LATIN")
#: Supported languages by code; the order is the one error messages list them in.
LANGUAGES: dict[str, Language] = {lang.code: lang for lang in (RUSSIAN, ENGLISH)}
#: Fields written for image models, in English for every world (by field name, in any schema).
IMAGE_FIELDS = frozenset({"visual_style", "appearance", "prompt", "image_prompt"})
#: A text is "in" a language when at least this share of its letters is in its script
#: (the rest leaves room for a brand, a loan word, a Latin place name).
SCRIPT_SHARE_MIN = 0.75


class UnsupportedLanguage(ValueError):
    """A language the pipeline cannot write, or a value that names no language."""


def supported_list() -> str:
    """``ru (Russian), en (English)``: what error messages offer instead."""
    return ", ".join(lang.label for lang in LANGUAGES.values())


#: Every way a catalog may name a supported language, casefolded, to its code.
_NAMES = {
    name.casefold(): lang.code
    for lang in LANGUAGES.values()
    for name in (lang.code, lang.name, lang.native)
}


def _other_language(value: str) -> str | None:
    """The English name of a language the pipeline does not support, if ``value`` is one."""
    from lingua import IsoCode639_1
    from lingua import Language as LinguaLanguage

    try:
        return LinguaLanguage.from_iso_code_639_1(IsoCode639_1.from_str(value)).name.title()
    except ValueError:
        pass
    try:
        return LinguaLanguage.from_str(value).name.title()
    except ValueError:
        return None


def language_code(value: str) -> str:
    """The supported language ``value`` names: a code (``ru``, ``ru-RU``), an English name
    (``Russian``) or a native one (``русский``), in any case; else ``UnsupportedLanguage``."""
    text = value.strip()
    head = text.replace("_", "-").split("-", 1)[0]
    for candidate in (text, head):
        code = _NAMES.get(candidate.casefold())
        if code is not None:
            return code
    other = _other_language(head) if head else None
    if other is not None:
        raise UnsupportedLanguage(
            f"{text!r} ({other}) is not a supported language; supported: {supported_list()}"
        )
    raise UnsupportedLanguage(
        f"{text!r} is not a language code or name; supported: {supported_list()}"
    )


def language_named(value: str) -> Language:
    """The supported language ``value`` names (see ``language_code``)."""
    return LANGUAGES[language_code(value)]


@functools.cache
def _detector() -> Any:
    """lingua's detector for the supported languages only: small, fast, built once."""
    from lingua import IsoCode639_1, LanguageDetectorBuilder
    from lingua import Language as LinguaLanguage

    languages = [
        LinguaLanguage.from_iso_code_639_1(IsoCode639_1.from_str(code)) for code in LANGUAGES
    ]
    return LanguageDetectorBuilder.from_languages(*languages).build()


@functools.lru_cache(maxsize=4096)
def _detect(text: str) -> str | None:
    found = _detector().detect_language_of(text)
    return None if found is None else str(found.iso_code_639_1.name).lower()


def detect_language(texts: Iterable[str]) -> str | None:
    """The supported language ``texts`` are written in, or None when they give no clue
    (no letters of a supported script). Cached: catalogs are read on every sensor tick."""
    joined = "\n".join(text for text in texts if text and text.strip())
    return _detect(joined) if joined else None


@functools.lru_cache(maxsize=2048)
def script_of(char: str) -> str:
    """The script of a letter as Unicode names it (``CYRILLIC``, ``LATIN``, ``GREEK``)."""
    return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]


def words(text: str) -> list[str]:
    """The runs of letters in ``text`` (digits, ``_`` and punctuation split them)."""
    found: list[str] = []
    current: list[str] = []
    for char in text:
        if char.isalpha():
            current.append(char)
        elif current:
            found.append("".join(current))
            current = []
    if current:
        found.append("".join(current))
    return found


def foreign_words(text: str, lang: Language, allowed: Iterable[str] = ()) -> list[str]:
    """The words of ``text`` not written in ``lang``'s script, except ``allowed`` ones."""
    keep = {word.casefold() for word in allowed}
    return [
        word
        for word in words(text)
        if word.casefold() not in keep and any(script_of(c) != lang.script for c in word)
    ]


def script_share(text: str, lang: Language, allowed: Iterable[str] = ()) -> float | None:
    """The share of the letters of ``text`` in ``lang``'s script, ``allowed`` words left out;
    None when no letter is left to judge by."""
    keep = {word.casefold() for word in allowed}
    letters = [c for word in words(text) if word.casefold() not in keep for c in word]
    if not letters:
        return None
    return sum(1 for c in letters if script_of(c) == lang.script) / len(letters)


def _texts(value: object, path: str, field: str) -> Iterator[tuple[str, str, str]]:
    """(path, field name, text) of every string in a reply, nested models and lists too."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _texts(getattr(value, name), f"{path}.{name}" if path else name, name)
    elif isinstance(value, list | tuple):
        joined = " ".join(item for item in value if isinstance(item, str))
        if joined:
            yield path, field, joined
        for index, item in enumerate(value):
            if not isinstance(item, str):
                yield from _texts(item, f"{path}.{index}", field)
    elif isinstance(value, str):
        yield path, field, value


def language_problems(
    reply: BaseModel, lang: Language, allowed: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """(field, problem) for each text of a reply that is not in the language it must be in:
    image-facing fields in English, every other text in ``lang``. ``allowed`` words (the
    world's own names) are not counted against a text."""
    kept = tuple(allowed)
    problems: list[tuple[str, str]] = []
    for path, field, text in _texts(reply, "", ""):
        expected = ENGLISH if field in IMAGE_FIELDS else lang
        share = script_share(text, expected, kept)
        if share is None or share >= SCRIPT_SHARE_MIN:
            continue
        why = "image models read English best" if field in IMAGE_FIELDS else "the world's language"
        problems.append(
            (
                path,
                f"{path}: must be written in {expected.name} ({why}), but only "
                f"{share:.0%} of its letters are {expected.script.title()}; "
                f"write it in {expected.name}",
            )
        )
    return problems
