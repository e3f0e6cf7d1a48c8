"""The browser test drives Debian's Chromium through Playwright against a deployment made by
``tests/deploy/deploy_helpers.py``. No browser is ever downloaded: without /usr/bin/chromium
the test is skipped locally and fails in CI (``CI`` set), where ``.ci/run`` installs it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))

from browser_helpers import CHROMIUM_ARGS
from deploy_helpers import Deployment, deployment, postgres_problem

CHROMIUM = Path(os.environ.get("GENERIA_TEST_CHROMIUM", "/usr/bin/chromium"))

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def _unavailable(problem: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{problem}; CI must run the browser test")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    return CHROMIUM


@pytest.fixture(scope="module")
def ui_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    problem = postgres_problem()
    if problem:
        _unavailable(problem)
    with deployment(tmp_path_factory.mktemp("ui-deployment")) as running:
        yield running


@pytest.fixture
def artifacts() -> Path:
    """Where the screenshots go (gitignored; CI keeps them as artifacts)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    """One Chromium per module; each test's pages open in a context of their own."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
