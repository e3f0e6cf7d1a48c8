"""Claims: a lease on a unit before its paid or remote step, so no two runs work on it.

Runs of one world meet on every launch path (two clicks, a backfill beside the schedule,
``dagster dev``, range runs that carry no per-world tag), so the ledger, not the run queue,
keeps them apart. A lease names its holder (a token per step attempt, with the run id, host
and pid) and an expiry that the holder renews while its work is in flight.

- Taking a lease is one conditional upsert: it succeeds when the unit is free, already
  ours, or its lease expired. SQLite serialises it with ``BEGIN IMMEDIATE``; PostgreSQL
  with the row lock of ``INSERT ... ON CONFLICT DO UPDATE ... WHERE``.
- A holder on this host whose process is gone is taken over at once; elsewhere a dead
  holder's lease is taken over when it expires. Taking over lapses the dead holder's
  budget reservations, so what it reserved but never spent is no longer held.
- Clocks: expiry is compared with the writer's UTC clock; hosts must agree within a small
  fraction of the lease time (NTP does).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from generia_pipelines.units.model import as_utc, now_utc
from generia_pipelines.units.store import UnitStore
from generia_pipelines.units.tables import leases_table, reservations_table

_L = leases_table
_R = reservations_table


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: one step attempt of one run, in one process on one host."""

    token: str
    run_id: str
    host: str
    pid: int

    @classmethod
    def new(cls, run_id: str) -> Holder:
        return cls(uuid.uuid4().hex, run_id or "no-run", socket.gethostname(), os.getpid())

    @property
    def run_label(self) -> str:
        return self.run_id[:8]


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: ``held`` by us, or the other holder's run and lease expiry.
    ``took_over`` names the run whose expired or dead lease this claim replaced."""

    key: str
    held: bool
    run_id: str
    expires_at: datetime
    took_over: str | None = None


def process_alive(pid: int) -> bool:
    """Whether a process of this host is alive (a zombie, killed but not reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class ClaimStore(UnitStore):
    """Leases on units (or on any named piece of work) in the ledger."""

    def _upsert_lease(
        self, conn: Connection, key: str, holder: Holder, now: datetime, ttl_s: float
    ) -> sa.Row[Any] | None:
        values = {
            "lease_key": key,
            "holder": holder.token,
            "run_id": holder.run_id,
            "host": holder.host,
            "pid": holder.pid,
            "expires_at": now + timedelta(seconds=ttl_s),
            "taken_at": now,
        }
        insert = (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(_L)
        statement = (
            insert.values(**values)
            .on_conflict_do_update(
                index_elements=[_L.c.lease_key],
                set_={name: insert.excluded[name] for name in values if name != "lease_key"},
                where=(_L.c.holder == holder.token) | (_L.c.expires_at <= now),
            )
            .returning(_L.c.holder)
        )
        return conn.execute(statement).one_or_none()

    def claim(self, key: str, holder: Holder, *, ttl_s: float) -> Claim:
        """Take or renew the lease on ``key``; never works around a live lease of another."""
        now = now_utc()
        with self._transaction() as conn:
            before = conn.execute(
                sa.select(_L.c.holder, _L.c.run_id, _L.c.host, _L.c.pid, _L.c.expires_at).where(
                    _L.c.lease_key == key
                )
            ).one_or_none()
            dead = (
                before is not None
                and before.holder != holder.token
                and before.host == holder.host
                and before.pid != holder.pid
                and not process_alive(int(before.pid))
            )
            if dead and before is not None:  # its process is gone: expire it now
                conn.execute(
                    sa.update(_L)
                    .where(_L.c.lease_key == key, _L.c.holder == before.holder)
                    .values(expires_at=now)
                )
            taken = self._upsert_lease(conn, key, holder, now, ttl_s)
            if taken is None:
                # Another holder's live lease; read it again, since on PostgreSQL it may
                # have been inserted by a concurrent claim after our first look.
                current = conn.execute(
                    sa.select(_L.c.run_id, _L.c.expires_at).where(_L.c.lease_key == key)
                ).one_or_none()
                if current is None:  # released meanwhile: the next claim may take it
                    return Claim(key, False, "unknown", now)
                return Claim(key, False, str(current.run_id), as_utc(current.expires_at) or now)
            took_over = None
            if before is not None and before.holder != holder.token:
                took_over = str(before.run_id)
                # The previous holder is dead or expired: what it reserved is not held.
                conn.execute(
                    sa.update(_R)
                    .where(_R.c.holder == before.holder, _R.c.state == "reserved")
                    .values(expires_at=now)
                )
        return Claim(key, True, holder.run_id, now + timedelta(seconds=ttl_s), took_over)

    def renew(self, holder: Holder, *, ttl_s: float) -> int:
        """Extend every lease and reservation of ``holder``; the number of leases renewed."""
        now = now_utc()
        expires = now + timedelta(seconds=ttl_s)
        with self._transaction() as conn:
            renewed = conn.execute(
                sa.update(_L)
                .where(_L.c.holder == holder.token, _L.c.expires_at > now)
                .values(expires_at=expires)
            ).rowcount
            conn.execute(
                sa.update(_R)
                .where(_R.c.holder == holder.token, _R.c.state == "reserved", _R.c.expires_at > now)
                .values(expires_at=expires)
            )
        return int(renewed or 0)

    def release_claims(self, holder: Holder) -> None:
        """Give up every lease of ``holder``; its open reservations stop holding budget."""
        now = now_utc()
        with self._transaction() as conn:
            conn.execute(sa.delete(_L).where(_L.c.holder == holder.token))
            conn.execute(
                sa.update(_R)
                .where(_R.c.holder == holder.token, _R.c.state == "reserved")
                .values(expires_at=now)
            )

    def leases(self, prefix: str = "") -> list[Claim]:
        """Live and expired leases whose key starts with ``prefix`` (for reports and tests)."""
        with self._transaction() as conn:
            rows = conn.execute(
                sa.select(_L).where(_L.c.lease_key.startswith(prefix)).order_by(_L.c.lease_key)
            ).all()
        return [
            Claim(row.lease_key, True, str(row.run_id), as_utc(row.expires_at) or now_utc())
            for row in rows
        ]
