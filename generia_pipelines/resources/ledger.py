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

from generia_pipelines.ledger import LEDGER_URL_VARIABLE, Ledger, default_ledger_url


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

    @classmethod
    def from_env(cls) -> Self:
        """``GENERIA_LEDGER_URL`` through EnvVar when set (resolved at run time), else default."""
        url: Any = EnvVar(LEDGER_URL_VARIABLE) if os.environ.get(LEDGER_URL_VARIABLE) else ""
        return cls(url=url)
