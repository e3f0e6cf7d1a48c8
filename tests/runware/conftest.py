"""Fixtures for the Runware tests: a stand-in per test and fast-failing client settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from generia_pipelines.clients.runware import RunwareSettings
from generia_pipelines.local.runware_standin import DEFAULT_API_KEY, RunwareStandin, start


@pytest.fixture
async def standin() -> AsyncIterator[RunwareStandin]:
    server = await start(seed=1)
    try:
        yield server
    finally:
        await server.stop()


SettingsFactory = Callable[..., RunwareSettings]


def fast_settings(url: str, **overrides: Any) -> RunwareSettings:
    """Settings with short timeouts and backoff, so failure paths finish in milliseconds."""
    values: dict[str, Any] = {
        "api_key": DEFAULT_API_KEY,
        "url": url,
        "connect_timeout_s": 5.0,
        "request_timeout_s": 10.0,
        "enhance_timeout_s": 10.0,
        "download_timeout_s": 5.0,
        "close_timeout_s": 2.0,
        "max_attempts": 3,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
    }
    values.update(overrides)
    return RunwareSettings(**values)


@pytest.fixture
def make_settings(standin: RunwareStandin) -> SettingsFactory:
    """``make_settings(**overrides)``: fast settings pointing at this test's stand-in."""

    def make(**overrides: Any) -> RunwareSettings:
        return fast_settings(standin.url, **overrides)

    return make
