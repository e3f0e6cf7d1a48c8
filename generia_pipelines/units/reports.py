"""Reports over the unit store: costs, counts per stage, and remote ids that look duplicated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from generia_pipelines.units.keys import CHARACTERS, POSTS
from generia_pipelines.units.model import Duplicate
from generia_pipelines.units.store import UnitStore
from generia_pipelines.units.tables import reservations_table, units_table


@dataclass(frozen=True)
class PaidCall:
    """What the calls of one kind cost for one kind of unit in one partition."""

    unit_kind: str
    partition: str
    call_kind: str
    images: int
    text_calls: int
    usd: float


class ReportStore(UnitStore):
    """Read-only views of the units for checks, metadata and audits."""

    def _filters(self, world_id: str, kind: str | None, partition: str | None) -> list[Any]:
        filters: list[Any] = [units_table.c.world_id == world_id]
        if kind is not None:
            filters.append(units_table.c.kind == kind)
        if partition is not None:
            filters.append(units_table.c.partition == partition)
        return filters

    def cost(
        self, world_id: str, *, kind: str | None = None, partition: str | None = None
    ) -> float:
        """What the world's images cost, summed over its units (each image counted once)."""
        query = sa.select(sa.func.coalesce(sa.func.sum(units_table.c.cost_usd), 0.0)).where(
            *self._filters(world_id, kind, partition)
        )
        with self._transaction() as conn:
            return float(conn.execute(query).scalar_one())

    def paid_calls(self, world_id: str) -> list[PaidCall]:
        """The world's settled paid calls, summed per kind of unit, partition and call kind:
        each call counted once, under the unit it was made for."""
        calls, units = reservations_table, units_table
        # A call made for work that is not a unit of its own (planning a batch of characters)
        # still counts, under "other" and the period it was paid in.
        unit_kind = sa.func.coalesce(units.c.kind, "other")
        partition = sa.func.coalesce(units.c.partition, calls.c.period)
        query = (
            sa.select(
                unit_kind,
                partition,
                calls.c.kind,
                sa.func.sum(calls.c.images),
                sa.func.sum(calls.c.text_calls),
                sa.func.sum(calls.c.usd),
            )
            .select_from(calls.outerjoin(units, units.c.unit_key == calls.c.unit_key))
            .where(calls.c.world_id == world_id, calls.c.state == "spent")
            .group_by(unit_kind, partition, calls.c.kind)
            .order_by(partition, unit_kind, calls.c.kind)
        )
        with self._transaction() as conn:
            return [
                PaidCall(str(k), str(p), str(c), int(i or 0), int(t or 0), float(u or 0.0))
                for k, p, c, i, t, u in conn.execute(query).all()
            ]

    def counts(
        self, world_id: str, *, kind: str | None = None, partition: str | None = None
    ) -> dict[str, dict[str, int]]:
        """Units per kind and stage, e.g. ``{"posts": {"created": 10, "text_done": 2}}``.
        Inspection API (operators' scripts, tests)."""
        query = (
            sa.select(units_table.c.kind, units_table.c.status, sa.func.count())
            .where(*self._filters(world_id, kind, partition))
            .group_by(units_table.c.kind, units_table.c.status)
        )
        result: dict[str, dict[str, int]] = {}
        with self._transaction() as conn:
            for unit_kind, status, count in conn.execute(query).all():
                result.setdefault(unit_kind, {})[status] = int(count)
        return result

    def duplicates(self, world_id: str | None = None) -> list[Duplicate]:
        """Remote ids that point at a problem: one character, post or media recorded for two
        units, and units for which a second remote object was created (orphans)."""
        checks = [
            ("character_id", units_table.c.kind == CHARACTERS),
            ("post_id", units_table.c.kind == POSTS),
            ("media_id", sa.true()),
        ]
        found: list[Duplicate] = []
        with self._transaction() as conn:
            for name, condition in checks:
                column = units_table.c[name]
                filters = [condition, column.is_not(None)]
                if world_id is not None:
                    filters.append(units_table.c.world_id == world_id)
                shared = (
                    sa.select(column).where(*filters).group_by(column).having(sa.func.count() > 1)
                )
                rows = conn.execute(
                    sa.select(column, units_table.c.unit_key)
                    .where(*filters, column.in_(shared))
                    .order_by(column, units_table.c.unit_key)
                ).all()
                by_id: dict[str, list[str]] = {}
                for remote_id, key in rows:
                    by_id.setdefault(remote_id, []).append(key)
                found.extend(
                    Duplicate(name, remote_id, tuple(keys), f"{name} recorded for several units")
                    for remote_id, keys in by_id.items()
                )
            orphan_query = sa.select(units_table.c.unit_key, units_table.c.orphans).where(
                units_table.c.orphans.is_not(None)
            )
            if world_id is not None:
                orphan_query = orphan_query.where(units_table.c.world_id == world_id)
            for key, orphans in conn.execute(orphan_query).all():
                found.extend(
                    Duplicate(
                        orphan["field"],
                        orphan["id"],
                        (key,),
                        f"a second {orphan['field']} was created for this unit; the ledger "
                        f"kept {orphan['kept']}",
                    )
                    for orphan in orphans
                )
        return found
