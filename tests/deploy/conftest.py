"""One production-shaped deployment (PostgreSQL, code server, webserver, daemon) shared by the
deployment tests: starting it costs ~10 s, and each test works on worlds of its own. It takes
K=2 partitions per run, so that backfills of a few worlds make several range runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deploy_helpers import Deployment, batched_env, deployment, require_postgres


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_postgres()
    with deployment(tmp_path_factory.mktemp("deployment"), env=batched_env()) as running:
        yield running
