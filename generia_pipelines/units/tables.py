"""The ledger's tables, and the statements run for every item (built once, cached once).

``units`` and ``images`` hold each unit's progress and its paid-for bytes; ``spend`` the
money and calls a world's period has been charged; ``leases`` which run works on a unit now;
``reservations`` every paid call before it is made (for an image, its Runware ``taskUUID``),
until it becomes spend or is released.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

units_table = sa.Table(
    "generia_ledger_units",
    metadata,
    sa.Column("unit_key", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("world_id", sa.String(64), nullable=False),
    sa.Column("partition", sa.String(10), nullable=False),
    sa.Column("slot", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("payload", sa.JSON(none_as_null=True)),
    sa.Column("character_id", sa.String(128)),
    sa.Column("media_id", sa.String(128)),
    sa.Column("post_id", sa.String(128)),
    sa.Column("variants", sa.JSON(none_as_null=True)),
    sa.Column("image_sha256", sa.String(64)),
    sa.Column("image_size", sa.Integer),
    sa.Column("image_content_type", sa.String(64)),
    sa.Column("image_meta", sa.JSON(none_as_null=True)),
    sa.Column("cost_usd", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("orphans", sa.JSON(none_as_null=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_generia_ledger_units_world", "world_id", "kind", "partition"),
)

images_table = sa.Table(
    "generia_ledger_images",
    metadata,
    sa.Column("unit_key", sa.String(255), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

spend_table = sa.Table(
    "generia_ledger_spend",
    metadata,
    sa.Column("world_id", sa.String(64), primary_key=True),
    sa.Column("period", sa.String(10), primary_key=True),
    sa.Column("images", sa.Integer, nullable=False),
    sa.Column("text_calls", sa.Integer, nullable=False),
    sa.Column("usd", sa.Float, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

leases_table = sa.Table(
    "generia_ledger_leases",
    metadata,
    # A unit key, or another name for work that must not run twice at once.
    sa.Column("lease_key", sa.String(255), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
    # The run whose expired or dead lease this one replaced, if any.
    sa.Column("previous_run", sa.String(64)),
    sa.Index("ix_generia_ledger_leases_holder", "holder"),
)

reservations_table = sa.Table(
    "generia_ledger_reservations",
    metadata,
    # For an image: the Runware taskUUID, chosen and stored before the request is sent.
    sa.Column("reservation_id", sa.String(64), primary_key=True),
    sa.Column("unit_key", sa.String(255), nullable=False),
    sa.Column("world_id", sa.String(64), nullable=False),
    sa.Column("period", sa.String(10), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    # reserved (the call may be in flight, or its outcome unknown) -> spent | released
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("images", sa.Integer, nullable=False),
    sa.Column("text_calls", sa.Integer, nullable=False),
    sa.Column("usd", sa.Float, nullable=False),
    sa.Column("takeovers", sa.Integer, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_generia_ledger_reservations_open", "world_id", "period", "state"),
    sa.Index("ix_generia_ledger_reservations_unit", "unit_key", "kind", "state"),
    sa.Index("ix_generia_ledger_reservations_holder", "holder", "state"),
)

UNIT = sa.select(units_table).where(units_table.c.unit_key == sa.bindparam("key"))
UNIT_LOCKED = UNIT.with_for_update()
SPEND = sa.select(spend_table).where(
    spend_table.c.world_id == sa.bindparam("world"), spend_table.c.period == sa.bindparam("period")
)
SPEND_LOCKED = SPEND.with_for_update()
