"""Fixtures for the pipeline tests: a test bed with one small world."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_helpers import Bed, test_bed

WORLD = {
    "id": "neon-harbor",
    "name": "Neon Harbor",
    "prompt": "A rain-soaked port city where smugglers and poets share the same bars",
    "characters": 4,
    "posts_per_day": 6,
}


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    with test_bed(tmp_path) as made:
        made.write_worlds([WORLD])
        yield made
