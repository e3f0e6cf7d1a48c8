"""SQLite plumbing of the local stack: one WAL-mode file per service, plus idempotency records.

Each service owns its file (``character.db``, ``media.db``...) like the real platform owns a
database per service. Every file also holds the ``idempotency`` table of its service, so a
stored response lives next to the rows it describes and survives a restart of the stack.
The stack touches a database only from its own event-loop thread; statements are short.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_IDEMPOTENCY_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    method TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (method, key)
);
"""


def utc_now() -> str:
    """RFC 3339 UTC timestamp with microseconds, the format every created_at uses."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Database:
    """One SQLite file in WAL mode with autocommit statements and explicit transactions."""

    def __init__(self, path: Path, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=5.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_IDEMPOTENCY_SCHEMA + schema)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(self._conn.execute(sql, params).fetchall())

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class StoredResponse:
    """The first response given for an idempotency key, and what request it answered."""

    fingerprint: str
    response: bytes


class IdempotencyStore:
    """Responses by (method, key): a replay returns the stored bytes instead of acting twice."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, method: str, key: str) -> StoredResponse | None:
        row = self._db.one(
            "SELECT fingerprint, response FROM idempotency WHERE method = ? AND key = ?",
            (method, key),
        )
        return StoredResponse(row["fingerprint"], bytes(row["response"])) if row else None

    def put(self, method: str, key: str, fingerprint: str, response: bytes) -> None:
        self._db.execute(
            "INSERT INTO idempotency (method, key, fingerprint, response, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (method, key, fingerprint, response, utc_now()),
        )
