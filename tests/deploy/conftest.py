"""One production-shaped deployment (PostgreSQL, code server, webserver, daemon) shared by the
deployment tests: starting it costs ~10 s, and each test works on worlds of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from deploy_helpers import Deployment, deployment, postgres_problem


def require_postgres() -> None:
    """Skip without PostgreSQL, except in CI, where its absence is a failure."""
    problem = postgres_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{problem} (CI must provide PostgreSQL on 127.0.0.1:5432)")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_postgres()
    with deployment(tmp_path_factory.mktemp("deployment")) as running:
        yield running
