"""A Russian world's feed page in a real browser (issue 15): the demo populates the world on
the local stack, and Debian's Chromium opens the page it wrote. The page is read as UTF-8
and declared Russian, the Cyrillic the browser shows is the text the platform stores, every
image loads, and the screenshot ``15-russian-feed.png`` lands in ``test-artifacts/browser/``.
Needs no PostgreSQL (the demo runs on a SQLite instance)."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import browser_helpers
import pytest
from playwright.sync_api import expect

from generia_pipelines.demo import DemoOptions
from generia_pipelines.demo_run import run_demo

pytestmark = pytest.mark.timeout(240)

PROMPT = "Город каналов, где стеклодувы и ночные паромщики делят одни и те же мосты"


def _stored(root: Path) -> tuple[list[str], list[str]]:
    """The names and captions as the platform stores them (the stack's SQLite files)."""
    with sqlite3.connect(root / "stack" / "character.db") as db:
        names = [name for (name,) in db.execute("SELECT display_name FROM characters")]
    with sqlite3.connect(root / "stack" / "post.db") as db:
        captions = [caption for (caption,) in db.execute("SELECT caption FROM posts")]
    return names, captions


def test_a_russian_worlds_feed_page_renders_its_cyrillic(
    tmp_path: Path, browser: Any, artifacts: Path
) -> None:
    options = DemoOptions(
        root=tmp_path,
        world_id="kanaly",
        world_name="Город каналов",
        prompt=PROMPT,
        characters=4,
        posts=6,
        http_port=0,
    )
    # Playwright's sync API runs an event loop on this thread; Dagster runs its own.
    with ThreadPoolExecutor(max_workers=1) as worker:
        report = worker.submit(run_demo, options).result()
    assert report.success, report.error
    assert report.language == "ru" and report.feed_path is not None
    names, captions = _stored(tmp_path)

    context = browser.new_context(viewport={"width": 760, "height": 900}, locale="ru-RU")
    try:
        page = context.new_page()
        page.goto(report.feed_path.as_uri())
        assert page.evaluate("document.characterSet") == "UTF-8"
        assert page.evaluate("document.documentElement.lang") == "ru"
        expect(page.locator("h1")).to_have_text("Город каналов")
        expect(page.locator("h2").first).to_have_text("Персонажи")
        expect(page.locator("header .stats")).to_contain_text("4 персонажа · 6 постов")
        shown = page.locator(".caption").all_inner_texts()
        assert sorted(shown) == sorted(captions)  # the browser shows what the platform keeps
        assert sorted(page.locator(".person strong").all_inner_texts()) == sorted(names)
        tags = page.locator(".tags li").all_inner_texts()
        assert tags and all(tag.startswith("#") for tag in tags)
        loaded = page.evaluate(
            "[...document.images].every(img => img.complete && img.naturalWidth > 0)"
        )
        assert loaded and page.locator("img.picture").count() == 6
        browser_helpers.shot(page, artifacts, "15-russian-feed")
    finally:
        context.close()
    assert (artifacts / "15-russian-feed.png").stat().st_size > 10_000
