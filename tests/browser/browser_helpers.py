"""What the browser tests share besides fixtures: Chromium's flags and screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Headless, and no traffic of the browser's own (updates, sync, QUIC probes).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def shot(page: Any, artifacts: Path, name: str) -> None:
    """A full-page screenshot into the artifacts, named ``name``, once transitions ended
    (a dialog mid fade-in is half transparent)."""
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    print(f"screenshot: {path}")
