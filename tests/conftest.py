"""Shared fixtures: a real local Generia stack on free ports, one per test.

A stack starts in a few milliseconds, so each test gets a fresh one (fresh stores, no fault
or counter leaking between tests). ``stack_factory`` builds more, with a custom config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from generia_pipelines.local.stack import StackConfig, ThreadedStack

StackFactory = Callable[..., ThreadedStack]


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[StackFactory]:
    """``stack_factory(config=None, **overrides)`` -> a started ``ThreadedStack``.

    Without ``config`` the stack gets its own directory under ``tmp_path``; keyword
    overrides (``token="t"``, ``url_ttl_s=5``...) are applied to the config. Every stack
    made here is stopped at teardown.
    """
    started: list[ThreadedStack] = []

    def make(config: StackConfig | None = None, **overrides: Any) -> ThreadedStack:
        base = config or StackConfig(data_dir=tmp_path / f"stack-{len(started)}")
        stack = ThreadedStack(replace(base, **overrides))
        started.append(stack)
        return stack.start()

    yield make
    for stack in reversed(started):
        stack.stop()


@pytest.fixture
def stack(stack_factory: StackFactory) -> ThreadedStack:
    """A started local stack with default settings (no token, idempotency honoured)."""
    return stack_factory()
