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

import functools
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


@functools.cache
def _upsert_statement(dialect: str) -> Any:
    """The lease upsert for a dialect, built once. A renewal keeps when the lease was taken
    and from whom; a takeover records the run it replaced, so the caller can say so."""
    insert = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(_L)
    names = ("holder", "run_id", "host", "pid", "expires_at", "taken_at")
    ours = _L.c.holder == insert.excluded.holder
    update: dict[str, Any] = {name: insert.excluded[name] for name in names}
    update["taken_at"] = sa.case((ours, _L.c.taken_at), else_=insert.excluded.taken_at)
    update["previous_run"] = sa.case((ours, _L.c.previous_run), else_=_L.c.run_id)
    return (
        insert.values(lease_key=sa.bindparam("lease_key"), **{n: sa.bindparam(n) for n in names})
        .on_conflict_do_update(
            index_elements=[_L.c.lease_key],
            set_=update,
            where=ours | (_L.c.expires_at <= sa.bindparam("now")),
        )
        .returning(_L.c.taken_at, _L.c.previous_run)
    )


_HOLDER_OF = sa.select(_L.c.holder, _L.c.run_id, _L.c.host, _L.c.pid, _L.c.expires_at).where(
    _L.c.lease_key == sa.bindparam("key")
)


class ClaimStore(UnitStore):
    """Leases on units (or on any named piece of work) in the ledger."""

    def _upsert_lease(
        self, conn: Connection, key: str, holder: Holder, now: datetime, ttl_s: float
    ) -> sa.Row[Any] | None:
        """Take the lease if it is free, ours, or expired: one statement. Returns the row
        (with the run it was taken from, if any), or None when another live holder has it."""
        params = {
            "lease_key": key,
            "holder": holder.token,
            "run_id": holder.run_id,
            "host": holder.host,
            "pid": holder.pid,
            "expires_at": now + timedelta(seconds=ttl_s),
            "taken_at": now,
            "now": now,
        }
        return conn.execute(_upsert_statement(conn.dialect.name), params).one_or_none()

    def claim(self, key: str, holder: Holder, *, ttl_s: float) -> Claim:
        """Take or renew the lease on ``key``; never works around a live lease of another.

        One statement when the unit is free, ours or expired. Otherwise the holder is read:
        if its process on this host is gone, its lease is expired now, what it reserved is
        no longer held, and the lease is taken.
        """
        now = now_utc()
        expires = now + timedelta(seconds=ttl_s)
        with self._transaction() as conn:
            taken = self._upsert_lease(conn, key, holder, now, ttl_s)
            if taken is not None:
                fresh = as_utc(taken.taken_at) == now and taken.previous_run is not None
                return Claim(
                    key, True, holder.run_id, expires, taken.previous_run if fresh else None
                )
            other = conn.execute(_HOLDER_OF, {"key": key}).one_or_none()
            if other is None:  # released meanwhile: the next claim may take it
                return Claim(key, False, "unknown", now)
            dead = (
                other.host == holder.host
                and other.pid != holder.pid
                and not process_alive(int(other.pid))
            )
            if not dead:
                return Claim(key, False, str(other.run_id), as_utc(other.expires_at) or now)
            conn.execute(
                sa.update(_L)
                .where(_L.c.lease_key == key, _L.c.holder == other.holder)
                .values(expires_at=now)
            )
            # Its process is gone: what it reserved is not held any more.
            conn.execute(
                sa.update(_R)
                .where(_R.c.holder == other.holder, _R.c.state == "reserved")
                .values(expires_at=now)
            )
            if self._upsert_lease(conn, key, holder, now, ttl_s) is None:  # pragma: no cover
                return Claim(key, False, str(other.run_id), as_utc(other.expires_at) or now)
        return Claim(key, True, holder.run_id, expires, str(other.run_id))

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
            # Ours, and any lease that expired long ago (a killed run's): an expired lease
            # is no lease, and the table stays as small as the work in flight.
            stale = now - timedelta(hours=1)
            conn.execute(
                sa.delete(_L).where((_L.c.holder == holder.token) | (_L.c.expires_at < stale))
            )
            conn.execute(
                sa.update(_R)
                .where(_R.c.holder == holder.token, _R.c.state == "reserved")
                .values(expires_at=now)
            )
