"""Fixtures of the text generation tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from text_helpers import ChatServer


@pytest.fixture
async def chat_server() -> AsyncIterator[ChatServer]:
    """A scripted OpenAI-compatible endpoint on a free local port, on the test's loop."""
    server = await ChatServer().start()
    try:
        yield server
    finally:
        await server.stop()
