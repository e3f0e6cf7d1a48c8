"""Dagster's PostgreSQL storage with its connections kept open in every process.

dagster-postgres opens a new connection for every statement outside the webserver
(``NullPool``): in a run worker that is every event a step logs. A range run logs a
materialization and check evaluations for each of its partitions as it finishes, from the
step's own thread, so each new connection (about 9 ms of wall time, and a backend process
forked by the server) stalls every other partition of the run for that long. These classes
are the same storages with the small pool the webserver uses: one connection kept, a few
more on demand, recycled hourly. ``deploy/dagster.yaml`` names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

#: Connections beyond the one kept open, for threads that write at the same moment.
MAX_OVERFLOW = 4
#: Reopen a connection this old, so a server-side idle timeout never meets a stale one.
POOL_RECYCLE_S = 3600
#: No statement timeout: a run worker's writes must not be cut off (0 disables it).
NO_TIMEOUT = 0


_PooledT = TypeVar("_PooledT", bound=PostgresEventLogStorage | PostgresRunStorage)


def _pooled(
    cls: type[_PooledT], inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
) -> _PooledT:
    """The storage ``cls`` builds from its config, switched to the webserver's small pool."""
    storage = cls(
        inst_data=inst_data,
        postgres_url=pg_url_from_config(config_value),
        should_autocreate_tables=config_value.get("should_autocreate_tables", True),
        token_provider=get_token_provider_from_config(config_value),
    )
    storage.optimize_for_webserver(NO_TIMEOUT, POOL_RECYCLE_S, MAX_OVERFLOW)
    return storage


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """The event log in PostgreSQL over a kept-open connection."""

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> Self:
        return _pooled(cls, inst_data, config_value)


class PooledPostgresRunStorage(PostgresRunStorage):
    """The run storage in PostgreSQL over a kept-open connection."""

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> Self:
        return _pooled(cls, inst_data, config_value)
