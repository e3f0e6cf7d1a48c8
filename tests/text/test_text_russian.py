"""The offline writer in Russian: the world's nouns (and only nouns) as themes, each in the
case its sentence needs; Russian names whose gender the sentences agree with; no English in
what people read; English where image models read; the same output in any process."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_text_local import populate

from generia_pipelines.clients.records import World
from generia_pipelines.generation import offline_vocab_ru as ru
from generia_pipelines.generation.language import ENGLISH, RUSSIAN, foreign_words, script_share
from generia_pipelines.generation.morphology import parses, part_of_speech, term
from generia_pipelines.generation.offline_ru import Theme, feminine, feminine_surname, fill
from generia_pipelines.generation.prompts import PromptInputs, WorldInfo
from generia_pipelines.generation.schemas import valid_tag

ROOT = Path(__file__).resolve().parents[2]
KANALY = World(
    id="kanaly",
    name="Город каналов",
    description="",
    prompt="Город каналов, где стеклодувы и ночные паромщики делят одни и те же мосты",
)
#: A Russian world with an English name: the name is the only Latin a text may carry.
HARBOR = World(
    id="neon-harbor",
    name="Neon Harbor",
    description="Портовый город под вечным дождём.",
    prompt="Неоновые вывески, ночные рынки, контейнеры и затопленные переулки, где "
    "контрабандисты и уличные поэты пережидают тайфуны",
)
#: Prepositions of the templates and the case the noun after them must be in.
CASE_AFTER = {"у": "gent", "возле": "gent", "о": "loct", "об": "loct", "к": "datv"}


def _theme(world: World) -> Theme:
    return Theme.of(PromptInputs(world=WorldInfo.of(world)))


def test_theme_words_are_the_nouns_of_the_prompt() -> None:
    theme = _theme(KANALY)
    lemmas = [parses(t.text)[0].normal_form for t in theme.terms]
    assert lemmas == ["город", "канал", "стеклодув", "паромщик", "мост"]
    for found in theme.terms:  # every theme word reads as a noun to the analyzer
        assert part_of_speech(found.text) == "NOUN", found.text
    # The verbs, pronouns, adjectives and particles are not themes.
    for word, kind in [("делят", "VERB"), ("одни", "ADJF"), ("те", "ADJF"), ("ночные", "ADJF")]:
        assert part_of_speech(word) == kind
        assert word not in theme.words


def test_pronouns_verbs_and_stop_words_are_never_themes() -> None:
    world = World(
        id="w",
        name="Наш мир",
        description="",
        prompt="Мы живём там, где они строят свои дома, и это наш мир, а люди здесь поют",
    )
    theme = _theme(world)
    # "дома" is its only noun; a terse world is topped up from the writer's own nouns.
    assert parses(theme.terms[0].text)[0].normal_form == "дом"
    for found in theme.terms:
        assert part_of_speech(found.text) == "NOUN"
    assert not {"мы", "они", "это", "наш", "мир", "люди", "строят", "поют"} & set(theme.words)


async def test_theme_nouns_take_the_case_their_preposition_needs() -> None:
    lemmas = {parses(t.text)[0].normal_form for t in _theme(KANALY).terms}
    feed = await populate(KANALY, characters=6, posts=36)
    checked = 0
    for text in [p.caption for p in feed.posts] + [c.bio for c in feed.characters]:
        words = re.findall(r"[а-яё-]+", text.lower())
        for before, word in itertools.pairwise(words):
            readings = [r for r in parses(word) if r.normal_form in lemmas]
            if before in CASE_AFTER and readings:
                case = CASE_AFTER[before]
                assert any(case in r.tag.grammemes for r in readings), f"{before} {word}: {text}"
                checked += 1
    assert checked >= 20


async def test_russian_captions_and_bios_have_no_english_but_the_worlds_own_name() -> None:
    feed = await populate(HARBOR, characters=10, posts=40)
    own = HARBOR.name.split()
    for person in feed.characters:
        for text in (person.display_name, person.bio, person.personality, *person.interests):
            assert foreign_words(text, RUSSIAN, allowed=own) == [], text
        assert script_share(person.appearance, ENGLISH) == 1.0  # for the image model
    for post in feed.posts:
        assert foreign_words(post.caption, RUSSIAN, allowed=own) == [], post.caption
        assert all(valid_tag(tag) for tag in post.tags)
        assert script_share(post.image_prompt, ENGLISH) == 1.0, post.image_prompt
    for text in (feed.brief.summary, feed.brief.setting, feed.brief.tone, *feed.brief.themes):
        assert foreign_words(text, RUSSIAN, allowed=own) == [], text
    assert script_share(feed.brief.visual_style, ENGLISH) == 1.0
    assert any("Neon Harbor" in text for text in (feed.brief.summary, feed.brief.setting))
    assert all(script_share(a.prompt, ENGLISH) == 1.0 for a in feed.avatars)


async def test_russian_names_and_the_grammar_of_their_gender() -> None:
    feed = await populate(KANALY, characters=20, posts=0)
    women = [c for c in feed.characters if feminine(c.display_name)]
    men = [c for c in feed.characters if not feminine(c.display_name)]
    assert women and men
    for person in feed.characters:
        first = re.split(r"[ .]", person.display_name)[0].capitalize()
        assert first in ru.FEMALE_NAMES + ru.MALE_NAMES, person.display_name
        # The personality opens with an adjective agreeing with the character's gender.
        opening = person.personality.split()[0].lower()
        gender = "femn" if person in women else "masc"
        assert any(r.tag.POS == "ADJF" and gender in r.tag.grammemes for r in parses(opening)), (
            person.personality
        )
    assert feminine_surname("Соколов") == "Соколова"
    assert feminine_surname("Полянский") == "Полянская"
    assert feminine_surname("Мостовой") == "Мостовая"
    assert feminine_surname("Черных") == "Черных"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("рядом с {kw:ablt}", "рядом со стеклодувами"),
        ("думаю о {kw:loct}", "думаю о стеклодувах"),
        ("думаю о {thing:loct}", "думаю об уличной еде"),
        ("много {kw:gent}", "много стеклодувов"),
        ("вижу {kw:accs}", "вижу стеклодувов"),
        ("вижу {thing:accs}", "вижу уличную еду"),
        ("{Kw:nomn} и я", "Стеклодувы и я"),
        ("Я [нашёл|нашла] {thing:accs}.", "Я нашла уличную еду."),
    ],
)
def test_fill_declines_each_slot_and_fixes_its_preposition(template: str, expected: str) -> None:
    values = {"kw": term("стеклодувы"), "thing": term("уличная еда")}
    assert fill(template, values, feminine=True) == expected


def test_every_word_bank_phrase_declines() -> None:
    """A phrase that pymorphy read as something else would come out in wrong forms."""
    for phrase in (*ru.THINGS, *ru.INTERESTS, *ru.OCCUPATIONS):
        assert term(phrase).form("nomn") == phrase


def test_russian_output_does_not_depend_on_the_process() -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.path.insert(0, sys.argv[1])
        from test_text_russian import KANALY
        from test_text_local import populate

        async def main():
            feed = await populate(KANALY, characters=6, posts=6)
            print(feed.brief.model_dump_json())
            for item in (*feed.characters, *feed.posts):
                print(item.model_dump_json())

        asyncio.run(main())
        """
    )
    outputs = []
    for hash_seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", script, str(Path(__file__).parent)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=ROOT,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 1 + 6 + 6
    assert re.search("[а-яё]", outputs[0])
