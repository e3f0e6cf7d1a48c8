"""Fixtures of the bad-input tests: the pipeline test bed with one good, small world."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The pipeline test bed (stack + Runware stand-in + worlds file + ledger) lives with the e2e
# tests; these tests drive the same bed with bad input.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from bad_input_helpers import GOOD_WORLD
from pipeline_helpers import Bed, test_bed


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    """A fresh stack and instance with the good world in the worlds file."""
    with test_bed(tmp_path) as made:
        made.write_worlds([GOOD_WORLD])
        yield made
