"""Fixtures of the local-stack tests: stubs and an HTTP client bound to the ``stack`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from stack_helpers import StackApi, open_api

from generia_pipelines.local.stack import ThreadedStack


@pytest.fixture
async def api(stack: ThreadedStack) -> AsyncIterator[StackApi]:
    """Raw async stubs of all four services and an httpx client, on this test's loop."""
    async with AsyncExitStack() as exits:
        yield await open_api(stack, exits)
