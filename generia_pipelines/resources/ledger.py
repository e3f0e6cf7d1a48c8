"""Dagster resource for the generation ledger.

The URL may carry a database password: configure it through ``EnvVar("GENERIA_LEDGER_URL")``
(``from_env`` does) so the UI shows the variable's name, not its value; logs and errors only
ever show the masked URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field, PrivateAttr

from generia_pipelines.errors import ConfigError
from generia_pipelines.ledger import LEDGER_URL_VARIABLE, Holder, Ledger, default_ledger_url
from generia_pipelines.units.session import (
    DEFAULT_LEASE_TTL_S,
    DEFAULT_LEASE_WAIT_S,
    ClaimSession,
)


class LedgerResource(ConfigurableResource):
    """The generation ledger (SQLite under DAGSTER_HOME by default, or PostgreSQL)."""

    url: str = Field(
        default="",
        description="SQLAlchemy URL (GENERIA_LEDGER_URL); empty = SQLite under DAGSTER_HOME",
    )
    db_schema: str | None = Field(
        default=None, description="PostgreSQL schema holding the ledger tables (created if missing)"
    )
    keep_images: bool = Field(
        default=False, description="Keep image bytes after the platform confirmed the upload"
    )

    lease_ttl_s: float = Field(
        default=DEFAULT_LEASE_TTL_S,
        gt=0,
        description="How long a unit's lease lasts unrenewed; a dead run's units are taken "
        "over after it (at once on the same host) (GENERIA_LEASE_TTL_S)",
    )
    lease_wait_s: float = Field(
        default=DEFAULT_LEASE_WAIT_S,
        ge=0,
        description="How long to wait for a unit another live run works on before leaving "
        "it to that run (GENERIA_LEASE_WAIT_S)",
    )

    _ledger: Any = PrivateAttr(default=None)

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[Self]:
        """Open one ledger (one connection pool) for the run and close it at the end."""
        ledger = Ledger(
            self.url or default_ledger_url(), schema=self.db_schema, keep_images=self.keep_images
        )
        if context.log is not None:
            context.log.info(f"generation ledger: {ledger.display_url}")
        self._ledger = ledger
        try:
            yield self
        finally:
            self._ledger = None
            ledger.close()

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise RuntimeError("LedgerResource.ledger is only usable inside a Dagster run")
        ledger: Ledger = self._ledger
        return ledger

    def claims(self, run_id: str, logger: Any = None) -> ClaimSession:
        """A claim session for one step attempt of run ``run_id``."""
        return ClaimSession(
            self.ledger,
            Holder.new(run_id),
            ttl_s=self.lease_ttl_s,
            wait_s=self.lease_wait_s,
            logger=logger,
        )

    @classmethod
    def from_env(cls) -> Self:
        """``GENERIA_LEDGER_URL`` through EnvVar when set (resolved at run time), else default;
        lease times from ``GENERIA_LEASE_TTL_S`` and ``GENERIA_LEASE_WAIT_S``."""
        url: Any = EnvVar(LEDGER_URL_VARIABLE) if os.environ.get(LEDGER_URL_VARIABLE) else ""
        return cls(
            url=url,
            lease_ttl_s=_seconds("GENERIA_LEASE_TTL_S", DEFAULT_LEASE_TTL_S, positive=True),
            lease_wait_s=_seconds("GENERIA_LEASE_WAIT_S", DEFAULT_LEASE_WAIT_S, positive=False),
        )


def _seconds(variable: str, default: float, *, positive: bool) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{variable}={raw!r} is not a number of seconds") from None
    if value < 0 or (positive and value == 0) or value != value:
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{variable}={raw!r} must be {bound} seconds")
    return value
