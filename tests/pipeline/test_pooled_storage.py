"""The deployment's PostgreSQL storage keeps its connections open in a run worker, where
dagster-postgres alone opens one for every statement, and stores the same events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    DagsterInstance,
    Definitions,
    DynamicPartitionsDefinition,
    define_asset_job,
    multi_asset,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from ledger_targets import PG_URL

from generia_pipelines.pooled_storage import MAX_OVERFLOW

WORLDS = DynamicPartitionsDefinition(name="worlds")
KEYS = [f"w-{index:02d}" for index in range(20)]


@multi_asset(
    specs=[AssetSpec("toy", partitions_def=WORLDS, skippable=True)],
    partitions_def=WORLDS,
    can_subset=True,
)
def toy(context):  # type: ignore[no-untyped-def]
    for key in context.partition_keys:
        context.log_event(AssetMaterialization(asset_key="toy", partition=key))
    yield from ()


DEFS = Definitions(assets=[toy], jobs=[define_asset_job("toy_job", selection=[toy])])


@pytest.fixture
def database(postgres_problem: str | None) -> Iterator[dict[str, object]]:
    if postgres_problem:
        pytest.skip(postgres_problem)
    name = f"pooled_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_URL)
    try:
        yield {
            "hostname": url.host,
            "port": url.port or 5432,
            "username": url.username,
            "password": url.password or "",
            "db_name": name,
            "scheme": "postgresql+psycopg2",
        }
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _instance(home: Path, db: dict[str, object], pooled: bool) -> DagsterInstance:
    config: dict[str, object]
    if pooled:
        module = "generia_pipelines.pooled_storage"
        config = {
            "run_storage": {
                "module": module,
                "class": "PooledPostgresRunStorage",
                "config": {"postgres_db": db},
            },
            "event_log_storage": {
                "module": module,
                "class": "PooledPostgresEventLogStorage",
                "config": {"postgres_db": db},
            },
            "schedule_storage": {
                "module": "dagster_postgres.schedule_storage",
                "class": "PostgresScheduleStorage",
                "config": {"postgres_db": db},
            },
        }
    else:
        config = {"storage": {"postgres": {"postgres_db": db}}}
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return DagsterInstance.from_config(str(home))


def _connections_opened_by_a_range_run(instance: DagsterInstance) -> int:
    engine = instance.event_log_storage._engine  # type: ignore[attr-defined]
    opened = []
    sa.event.listen(engine, "connect", lambda *_: opened.append(1))
    instance.add_dynamic_partitions("worlds", KEYS)
    result = DEFS.resolve_job_def("toy_job").execute_in_process(
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: KEYS[0], ASSET_PARTITION_RANGE_END_TAG: KEYS[-1]},
    )
    assert result.success
    assert instance.get_materialized_partitions(AssetKey("toy")) == set(KEYS)
    return len(opened)


def test_a_range_run_reuses_its_event_log_connections(
    tmp_path: Path, database: dict[str, object]
) -> None:
    pooled = _instance(tmp_path / "pooled", database, pooled=True)
    try:
        assert _connections_opened_by_a_range_run(pooled) <= 1 + MAX_OVERFLOW
    finally:
        pooled.dispose()


def test_dagster_postgres_alone_opens_a_connection_per_statement(
    tmp_path: Path, database: dict[str, object]
) -> None:
    """Why the deployment names the pooled classes: the stock storage's count grows with
    the partitions (each materialization is several statements)."""
    stock = _instance(tmp_path / "stock", database, pooled=False)
    try:
        assert _connections_opened_by_a_range_run(stock) > 2 * len(KEYS)
    finally:
        stock.dispose()
