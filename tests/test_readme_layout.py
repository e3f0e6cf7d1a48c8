"""The README's layout table names every module and folder of the package, and only those."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "generia_pipelines"


def _layout_names() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([^`]+)`", section))


def test_every_top_level_module_and_folder_is_in_the_layout_table() -> None:
    names = _layout_names()
    shown = {Path(n).name.rstrip("/") for n in names}
    expected = {
        p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py")
        or (p.is_dir() and p.name not in {"__pycache__", "proto"})
    }
    assert expected - shown == set(), f"missing from the README's layout: {expected - shown}"


def test_every_path_the_layout_table_names_exists() -> None:
    for name in _layout_names():
        if " " in name or not ("/" in name or name.endswith(".py")):
            continue  # a command or a word, not a path
        found = [ROOT / name, PACKAGE / name, *PACKAGE.rglob(Path(name).name)]
        assert any(c.exists() for c in found), f"README layout names {name!r}: no such path"
