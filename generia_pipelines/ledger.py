"""The generation ledger: what the pipeline has done, unit by unit, so it never does it twice.

One object over one database that holds the units and their images
(:mod:`generia_pipelines.units.store`), the budgets' reservations and spend
(:mod:`~generia_pipelines.units.spend`) and the leases that keep two runs off one unit
(:mod:`~generia_pipelines.units.claims`). This module is the import path the rest of the
code uses.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from generia_pipelines.budget import Budget, BudgetExceeded, Spend
from generia_pipelines.units.claims import Claim, ClaimStore, Holder
from generia_pipelines.units.model import (
    Duplicate,
    ImageInfo,
    LedgerError,
    Stage,
    StoredImage,
    Unit,
    sniff_content_type,
)
from generia_pipelines.units.reports import ReportStore
from generia_pipelines.units.spend import Reservation, SpendStore
from generia_pipelines.units.store import (
    LEDGER_URL_VARIABLE,
    LedgerUnwritable,
    default_ledger_url,
    mask_url,
)
from generia_pipelines.units.tables import (
    images_table,
    leases_table,
    reservations_table,
    spend_table,
    units_table,
)

__all__ = [
    "LEDGER_URL_VARIABLE",
    "Budget",
    "BudgetExceeded",
    "Claim",
    "Duplicate",
    "Holder",
    "ImageInfo",
    "Ledger",
    "LedgerError",
    "LedgerUnwritable",
    "Reservation",
    "Spend",
    "Stage",
    "StoredImage",
    "Unit",
    "default_ledger_url",
    "images_table",
    "leases_table",
    "mask_url",
    "reservations_table",
    "sniff_content_type",
    "spend_table",
    "units_table",
]


class Ledger(ClaimStore, SpendStore, ReportStore):
    """Units, images, budgets and leases on one database."""

    def record_paid_image(
        self, key: str, data: bytes, meta: dict[str, object], reservation_id: str, cost_usd: float
    ) -> Unit:
        """The image a reservation paid for, its cost and the budget's spend, in one write."""

        def settle(conn: Connection) -> float:
            return self.settle_in(conn, reservation_id, cost_usd)

        return self.record_image(key, data, meta, cost_usd, settle=settle)

    def record_paid_text(
        self,
        key: str,
        payload: dict[str, object],
        reservation_id: str,
        cost_usd: float,
        *,
        character_id: str | None = None,
    ) -> Unit:
        """A text a reservation paid for, and the budget's spend, in one write."""

        def settle(conn: Connection) -> float:
            return self.settle_in(conn, reservation_id, cost_usd)

        return self.record_text(key, payload, character_id=character_id, settle=settle)

    def record_paid_waste(self, key: str, reservation_id: str, cost_usd: float) -> Unit:
        """A billed result that cannot be used (invalid, NSFW): spend, and the unit's cost."""

        def settle(conn: Connection) -> float:
            return self.settle_in(conn, reservation_id, cost_usd)

        return self.record_cost(key, cost_usd, settle=settle)
