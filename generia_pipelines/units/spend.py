"""Budgets that count money, not attempts: every paid call is reserved before it is made.

A reservation is a row per paid call (for an image, keyed by its Runware ``taskUUID``): it
holds the call's share of the world's budget while the call is in flight, and then

- becomes spend, at the cost the provider reported (``settle``), or
- is released when the call provably was not billed (``release``): the provider could not
  be reached, refused the key or the request, or a resubmitted task was fetched instead, or
- lapses with its holder's lease: a run that died mid-call holds nothing. The row stays, so
  the next run resubmits the same ``taskUUID`` and Runware answers with the image it billed,
  never a second one.

The budget check counts settled spend plus the live reservations of every run, in the same
locked transaction that adds the new reservation, so concurrent runs cannot overshoot
together, and a provider outage of any length leaves the budget as it was.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from generia_pipelines.budget import SETUP_PERIOD, Budget, BudgetExceeded, Spend
from generia_pipelines.units.keys import parse_unit_key
from generia_pipelines.units.model import LedgerError, now_utc
from generia_pipelines.units.store import UnitStore
from generia_pipelines.units.tables import (
    SPEND,
    SPEND_LOCKED,
    reservations_table,
    spend_table,
)
from generia_pipelines.world_keys import parse_day, validate_world_key

PaidKind = Literal["image", "text"]
RESERVED, SPENT, RELEASED = "reserved", "spent", "released"
_R = reservations_table
_S = spend_table
bp = sa.bindparam

# Statements run for every paid call, built once: SQLAlchemy then reuses their compiled
# form instead of building and hashing a new statement per call.
_OPEN_INTENT = (
    sa.select(_R.c.reservation_id, _R.c.takeovers)
    .where(_R.c.unit_key == bp("unit_key"), _R.c.kind == bp("kind"), _R.c.state == RESERVED)
    .order_by(_R.c.created_at.desc())
    .limit(1)
    # Locks in the order settle takes them: the reservation, then the spend.
    .with_for_update()
)
_LIVE = (
    _R.c.world_id == bp("world"),
    _R.c.period == bp("period"),
    _R.c.state == RESERVED,
    _R.c.expires_at > bp("now"),
    _R.c.reservation_id != bp("exclude"),
)


def _held(column: Any, zero: Any) -> Any:
    return sa.select(sa.func.coalesce(sa.func.sum(column), zero)).where(*_LIVE).scalar_subquery()


_SPEND_AND_HELD = (
    sa.select(
        _S.c.images,
        _S.c.text_calls,
        _S.c.usd,
        _held(_R.c.images, 0).label("held_images"),
        _held(_R.c.text_calls, 0).label("held_text_calls"),
        _held(_R.c.usd, 0.0).label("held_usd"),
    )
    .where(_S.c.world_id == bp("world"), _S.c.period == bp("period"))
    .with_for_update(of=_S)
)
_RESUME_INTENT = (
    sa.update(_R)
    .where(_R.c.reservation_id == bp("rid"))
    .values(
        holder=bp("holder"),
        expires_at=bp("expires"),
        usd=bp("usd"),
        takeovers=bp("takeovers"),
        updated_at=bp("now"),
    )
)
_SETTLE = (
    sa.update(_R)
    .where(_R.c.reservation_id == bp("rid"), _R.c.state != SPENT)
    .values(state=SPENT, usd=bp("cost"), updated_at=bp("now"))
    .returning(_R.c.world_id, _R.c.period, _R.c.images, _R.c.text_calls)
)
_ADD_SPEND = (
    sa.update(_S)
    .where(_S.c.world_id == bp("w"), _S.c.period == bp("p"))
    .values(
        images=_S.c.images + bp("add_images"),
        text_calls=_S.c.text_calls + bp("add_text_calls"),
        usd=_S.c.usd + bp("add_usd"),
        updated_at=bp("now"),
    )
)


@dataclass(frozen=True)
class Reservation:
    """A paid call's claim on the budget. ``resumed``: an earlier run reserved (and perhaps
    sent) this very call, whose outcome is unknown, so it must be resubmitted, not replaced."""

    reservation_id: str
    unit_key: str
    world_id: str
    period: str
    kind: PaidKind
    usd: float
    resumed: bool = False
    takeovers: int = 0


def _spend_key(world_id: str, period: str) -> tuple[str, str]:
    validate_world_key(world_id)
    if period != SETUP_PERIOD:
        period = parse_day(period).isoformat()
    return world_id, period


class SpendStore(UnitStore):
    """Budget reservations and spend per world and period."""

    def _spend_row(self, conn: Connection, world_id: str, period: str, lock: bool) -> Spend:
        query, params = (SPEND_LOCKED if lock else SPEND), {"world": world_id, "period": period}
        row = conn.execute(query, params).one_or_none()
        if row is None:  # the period's first spend
            self._insert_ignore(
                conn,
                spend_table,
                [
                    {
                        "world_id": world_id,
                        "period": period,
                        "images": 0,
                        "text_calls": 0,
                        "usd": 0.0,
                        "updated_at": now_utc(),
                    }
                ],
            )
            row = conn.execute(query, params).one()
        return Spend(int(row.images), int(row.text_calls), float(row.usd))

    def _add_spend(self, conn: Connection, world_id: str, period: str, total: Spend) -> None:
        conn.execute(
            sa.update(spend_table)
            .where(spend_table.c.world_id == world_id, spend_table.c.period == period)
            .values(
                images=total.images,
                text_calls=total.text_calls,
                usd=total.usd,
                updated_at=now_utc(),
            )
        )

    def _spend_and_reserved(
        self, conn: Connection, world_id: str, period: str, now: datetime, exclude: str
    ) -> tuple[Spend, Spend]:
        """The period's settled spend (its row locked, created if missing) and what live
        reservations other than ``exclude`` hold, in one statement."""
        params = {"world": world_id, "period": period, "now": now, "exclude": exclude}
        row = conn.execute(_SPEND_AND_HELD, params).one_or_none()
        if row is None:  # the period's first spend
            self._spend_row(conn, world_id, period, lock=True)
            row = conn.execute(_SPEND_AND_HELD, params).one()
        return (
            Spend(int(row.images), int(row.text_calls), float(row.usd)),
            Spend(int(row.held_images), int(row.held_text_calls), float(row.held_usd)),
        )

    @staticmethod
    def _live_reserved(
        conn: Connection, world_id: str, period: str, now: datetime, exclude: str | None = None
    ) -> Spend:
        filters = [
            _R.c.world_id == world_id,
            _R.c.period == period,
            _R.c.state == RESERVED,
            _R.c.expires_at > now,
        ]
        if exclude is not None:
            filters.append(_R.c.reservation_id != exclude)
        images, text_calls, usd = conn.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(_R.c.images), 0),
                sa.func.coalesce(sa.func.sum(_R.c.text_calls), 0),
                sa.func.coalesce(sa.func.sum(_R.c.usd), 0.0),
            ).where(*filters)
        ).one()
        return Spend(int(images), int(text_calls), float(usd))

    def reserve(
        self,
        unit_key: str,
        budget: Budget,
        *,
        holder: str,
        ttl_s: float,
        kind: PaidKind,
        usd: float,
        period: str | None = None,
        resume: bool = False,
    ) -> Reservation:
        """Reserve one paid call of ``unit_key`` before making it, or raise ``BudgetExceeded``.

        With ``resume``, the unit's open reservation of that kind (an earlier call whose
        outcome is unknown, e.g. its run died after sending it) is taken over and returned
        with ``resumed=True`` instead of a new one: the caller resubmits that same call.
        """
        if usd < 0:
            raise ValueError(f"{unit_key}: a reservation of USD {usd} must be >= 0")
        key = parse_unit_key(unit_key)
        world_id, period = _spend_key(key.world_id, key.partition if period is None else period)
        now = now_utc()
        expires = now + timedelta(seconds=ttl_s)
        images, text_calls = (1, 0) if kind == "image" else (0, 1)
        with self._transaction() as conn:
            open_row = None
            if resume:
                open_row = conn.execute(
                    _OPEN_INTENT, {"unit_key": unit_key, "kind": kind}
                ).one_or_none()
            reservation_id = open_row.reservation_id if open_row else str(uuid.uuid4())
            spent, reserved = self._spend_and_reserved(conn, world_id, period, now, reservation_id)
            self._refuse_if_over(
                world_id, period, budget, spent, reserved, Spend(images, text_calls, usd)
            )
            takeovers = 0
            if open_row is not None:
                takeovers = int(open_row.takeovers) + 1
                conn.execute(
                    _RESUME_INTENT,
                    {
                        "rid": reservation_id,
                        "holder": holder,
                        "expires": expires,
                        "usd": usd,
                        "takeovers": takeovers,
                        "now": now,
                    },
                )
            else:
                conn.execute(
                    _R.insert(),
                    {
                        "reservation_id": reservation_id,
                        "unit_key": unit_key,
                        "world_id": world_id,
                        "period": period,
                        "kind": kind,
                        "state": RESERVED,
                        "holder": holder,
                        "expires_at": expires,
                        "images": images,
                        "text_calls": text_calls,
                        "usd": usd,
                        "takeovers": 0,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
        return Reservation(
            reservation_id, unit_key, world_id, period, kind, usd, open_row is not None, takeovers
        )

    def settle_in(self, conn: Connection, reservation_id: str, cost_usd: float) -> float:
        """Inside a transaction: turn the reservation into spend at ``cost_usd``; returns
        the cost added (0 when it was settled already, so a repeat never counts twice).

        Two statements: the reservation's conditional state change tells whether it was
        still open, and the period's spend row (made by ``reserve``) is incremented."""
        if cost_usd < 0:
            raise ValueError(f"reservation {reservation_id}: cost {cost_usd} must be >= 0")
        now = now_utc()
        row = conn.execute(
            _SETTLE, {"rid": reservation_id, "cost": cost_usd, "now": now}
        ).one_or_none()
        if row is None:
            known = conn.execute(
                sa.select(_R.c.state).where(_R.c.reservation_id == reservation_id)
            ).one_or_none()
            if known is None:
                raise LedgerError(
                    f"no reservation {reservation_id} in the ledger at {self.display_url}"
                )
            return 0.0
        conn.execute(
            _ADD_SPEND,
            {
                "w": row.world_id,
                "p": row.period,
                "add_images": int(row.images),
                "add_text_calls": int(row.text_calls),
                "add_usd": cost_usd,
                "now": now,
            },
        )
        return cost_usd

    def settle(self, reservation_id: str, cost_usd: float) -> float:
        """The call was billed ``cost_usd``: count it as spend (once)."""
        with self._transaction() as conn:
            return self.settle_in(conn, reservation_id, cost_usd)

    def release(self, reservation_id: str, note: str = "") -> None:
        """The call provably was not billed: give its share of the budget back."""
        with self._transaction() as conn:
            conn.execute(
                sa.update(_R)
                .where(_R.c.reservation_id == reservation_id, _R.c.state == RESERVED)
                .values(state=RELEASED, note=note[:500] or None, updated_at=now_utc())
            )

    @staticmethod
    def _refuse_if_over(
        world_id: str, period: str, budget: Budget, spent: Spend, reserved: Spend, asked: Spend
    ) -> None:
        """Raise ``BudgetExceeded`` when ``asked`` does not fit beside spend and reservations."""
        overruns = budget.overruns(spent + reserved, asked)
        if overruns:
            raise BudgetExceeded(
                world_id, period, budget, spent, asked, overruns, reserved=reserved
            )

    def reserved(self, world_id: str, period: str = SETUP_PERIOD) -> Spend:
        """What live reservations (calls in flight) hold of a world's period now.
        Inspection API (operators' scripts, tests)."""
        world_id, period = _spend_key(world_id, period)
        with self._transaction() as conn:
            return self._live_reserved(conn, world_id, period, now_utc())

    # -- direct spend (no call in flight to track) --------------------------------------

    def spend(
        self,
        world_id: str,
        budget: Budget,
        *,
        period: str = SETUP_PERIOD,
        images: int = 0,
        text_calls: int = 0,
        usd: float = 0.0,
    ) -> Spend:
        """Check and count spend at once, or raise ``BudgetExceeded`` and count nothing.
        Live reservations count against the budget. Returns the period's settled total."""
        requested = Spend(images, text_calls, usd)
        if images < 0 or text_calls < 0 or usd < 0:
            raise ValueError(f"spend requests must be >= 0, got {requested}")
        world_id, period = _spend_key(world_id, period)
        with self._transaction() as conn:
            spent = self._spend_row(conn, world_id, period, lock=True)
            reserved = self._live_reserved(conn, world_id, period, now_utc())
            self._refuse_if_over(world_id, period, budget, spent, reserved, requested)
            total = spent + requested
            self._add_spend(conn, world_id, period, total)
        return total

    def adjust_spend(
        self,
        world_id: str,
        *,
        period: str = SETUP_PERIOD,
        images: int = 0,
        text_calls: int = 0,
        usd: float = 0.0,
    ) -> Spend:
        """Correct the counters without a budget check; negative values refund."""
        world_id, period = _spend_key(world_id, period)
        if not (images or text_calls or usd):
            return self.spent(world_id, period)
        with self._transaction() as conn:
            spent = self._spend_row(conn, world_id, period, lock=True)
            total = Spend(
                max(0, spent.images + images),
                max(0, spent.text_calls + text_calls),
                max(0.0, spent.usd + usd),
            )
            self._add_spend(conn, world_id, period, total)
        return total

    def check_budget(
        self,
        world_id: str,
        budget: Budget,
        *,
        period: str = SETUP_PERIOD,
        images: int = 0,
        text_calls: int = 0,
        usd: float = 0.0,
    ) -> Spend:
        """Raise ``BudgetExceeded`` if the request would not fit beside what is spent and
        reserved, without counting it. Inspection API (operators' scripts, tests): the
        pipeline reserves instead, which checks and counts in one write."""
        requested = Spend(images, text_calls, usd)
        world_id, period = _spend_key(world_id, period)
        with self._transaction() as conn:
            spent = self._spend_row(conn, world_id, period, lock=False)
            reserved = self._live_reserved(conn, world_id, period, now_utc())
        self._refuse_if_over(world_id, period, budget, spent, reserved, requested)
        return spent

    def spent(self, world_id: str, period: str | None = None) -> Spend:
        """What the world was charged in one period, or in all periods when None."""
        query = sa.select(
            sa.func.coalesce(sa.func.sum(spend_table.c.images), 0),
            sa.func.coalesce(sa.func.sum(spend_table.c.text_calls), 0),
            sa.func.coalesce(sa.func.sum(spend_table.c.usd), 0.0),
        ).where(spend_table.c.world_id == world_id)
        if period is not None:
            query = query.where(spend_table.c.period == _spend_key(world_id, period)[1])
        with self._transaction() as conn:
            images, text_calls, usd = conn.execute(query).one()
        return Spend(int(images), int(text_calls), float(usd))
