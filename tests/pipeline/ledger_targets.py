"""Where the ledger tests' ledgers live: a SQLite file, or a private PostgreSQL schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from generia_pipelines.ledger import Ledger, mask_url

PG_URL = os.environ.get("GENERIA_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def postgres_unreachable() -> str | None:
    engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {mask_url(PG_URL)} is unreachable: {type(exc).__name__}"
    finally:
        engine.dispose()
    return None


@dataclass
class Target:
    """Where a test's ledger lives: a SQLite file, or a private PostgreSQL schema."""

    url: str
    schema: str | None

    def open(self, **kwargs: Any) -> Ledger:
        return Ledger(self.url, schema=self.schema, **kwargs)


def pg_schema_name() -> Iterator[str]:
    schema = f"ledger_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    try:
        yield schema
    finally:
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()
