"""Fixtures of the ledger tests: every test runs on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_targets import PG_URL, Target, pg_schema_name, postgres_unreachable

from generia_pipelines.ledger import Ledger


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    return postgres_unreachable()


@pytest.fixture(params=["sqlite", "postgresql"])
def target(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_problem: str | None
) -> Iterator[Target]:
    if request.param == "sqlite":
        yield Target(f"sqlite:///{tmp_path / 'ledger.sqlite'}", None)
        return
    if postgres_problem:
        pytest.skip(postgres_problem)
    yield from (Target(PG_URL, schema) for schema in pg_schema_name())


@pytest.fixture
def pg_schema(postgres_problem: str | None) -> Iterator[str]:
    if postgres_problem:
        pytest.skip(postgres_problem)
    yield from pg_schema_name()


@pytest.fixture
def ledger(target: Target) -> Iterator[Ledger]:
    opened = target.open()
    yield opened
    opened.close()
