"""Dagster's two undocumented event-volume switches, pinned on a range run shaped like ours.

The toy step has the shape of ``day_posts``: one ``multi_asset`` of three skippable assets on
a dynamic world × daily date ``MultiPartitionsDefinition``, a partitioned asset check, a
``BackfillPolicy.multi_run``; it logs each finished world-day as its own
``AssetMaterialization(partition=...)`` and check evaluation, and raises a ``Failure`` naming
the world-days that failed. The range run (a rectangle of 4 worlds × 2 days, one world
failing on both days) executes in process on SQLite and on PostgreSQL (dagster-postgres
bulk-inserts batches; SQLite writes a batch event by event).

What is pinned, and why the deployment sets one switch and not the other:

- ``DAGSTER_EVENT_BATCH_SIZE=N`` (read at every event) buffers the events Dagster sends with
  batch metadata and hands them to the storage N at a time: the run's planned events
  (written by the process creating the run: the daemon for schedules, sensors and
  backfills, the webserver for launches from the UI) and the materializations of one
  ``Output`` over many partitions (run workers). Statuses are unchanged: the finished
  world-days are materialized, the failed ones FAILED, every planned event is written.
  But both storages still write a batch of planned events one by one (dagster-postgres
  bulk-inserts only batches of materializations or observations), and the
  ``context.log_event`` materializations our steps log carry no batch metadata: on our
  steps the switch saves nothing today. Measured on PostgreSQL, a range of 300 world-days
  (toy step, no work): 48.2 s without, 48.9 s with N=100; the same range materialized by
  one ``Output`` (which cannot leave a failed world-day unmarked): 67 s → 39 s.
- ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1`` (read by the process creating the
  run) writes one planned event per asset holding the whole range, instead of one per
  partition (300 world-days: 48.2 s → 22.7 s); but then a failed world-day is no longer
  marked FAILED: it looks never materialized. Operators find failed world-days by that
  status (and re-run them from it), so the deployment does not set it.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    DynamicPartitionsDefinition,
    Failure,
    MultiPartitionsDefinition,
    define_asset_job,
    instance_for_test,
    multi_asset,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from ledger_targets import PG_URL, postgres_unreachable

BATCH_SIZE_VAR = "DAGSTER_EVENT_BATCH_SIZE"
SUBSET_VAR = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"

WORLDS = ["w-one", "w-two", "w-broke", "w-three"]
FAILING_WORLD = "w-broke"
DAYS = ["2026-11-20", "2026-11-21"]
ASSETS = [AssetKey("toy_drafts"), AssetKey("toy_images"), AssetKey("toy_posts")]
CHECK = "toy_posts_published"

toy_worlds = DynamicPartitionsDefinition(name="toy_worlds")
toy_world_days = MultiPartitionsDefinition(
    {
        "date": DailyPartitionsDefinition(start_date="2026-11-19", end_date="2026-11-23"),
        "world": toy_worlds,
    }
)
ALL_KEYS = [f"{day}|{world}" for day in DAYS for world in WORLDS]
FAILED_KEYS = {f"{day}|{FAILING_WORLD}" for day in DAYS}
GOOD_KEYS = set(ALL_KEYS) - FAILED_KEYS


@multi_asset(
    specs=[
        AssetSpec(ASSETS[0], partitions_def=toy_world_days, skippable=True),
        AssetSpec(ASSETS[1], deps=[ASSETS[0]], partitions_def=toy_world_days, skippable=True),
        AssetSpec(ASSETS[2], deps=[ASSETS[1]], partitions_def=toy_world_days, skippable=True),
    ],
    check_specs=[AssetCheckSpec(CHECK, asset=ASSETS[2], partitions_def=toy_world_days)],
    partitions_def=toy_world_days,
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=50),
    can_subset=True,
)
def toy_day_posts(context: AssetExecutionContext):  # no return annotation, as day_posts
    """Each world-day of the range reported on its own; the failing world's days fail."""
    failed = []
    for key in context.partition_keys:
        if key.endswith(f"|{FAILING_WORLD}"):
            failed.append(key)
            continue
        for asset in ASSETS:
            context.log_event(
                AssetMaterialization(asset_key=asset, partition=key, metadata={"posts": 2})
            )
        context.log_event(
            AssetCheckEvaluation(asset_key=ASSETS[2], check_name=CHECK, passed=True, partition=key)
        )
    if failed:
        raise Failure(
            description=f"{len(failed)} of {len(context.partition_keys)} world-days failed",
            allow_retries=False,
        )
    for _ in ():  # nothing to yield: each world-day was reported by log_event
        yield


toy_job = define_asset_job("toy_day_posts_job", selection=[toy_day_posts])
JOB = Definitions(assets=[toy_day_posts], jobs=[toy_job]).resolve_job_def(toy_job.name)
RANGE_TAGS = {
    ASSET_PARTITION_RANGE_START_TAG: f"{DAYS[0]}|{WORLDS[0]}",
    ASSET_PARTITION_RANGE_END_TAG: f"{DAYS[-1]}|{WORLDS[-1]}",
}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A scratch PostgreSQL database for one module's instances, dropped after."""
    problem = postgres_unreachable()
    if problem and os.environ.get("CI"):
        pytest.fail(f"{problem} (CI must provide PostgreSQL)")
    if problem:
        pytest.skip(problem)
    url = sa.make_url(PG_URL)
    name = f"generia_events_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DagsterInstance]:
    overrides: dict[str, Any] = {}
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        overrides = {"storage": {"postgres": {"postgres_url": url}}}
    with instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as made:
        if request.param == "postgresql":
            made.wipe()  # the module's database is shared by its PostgreSQL tests
        made.add_dynamic_partitions(toy_worlds.name or "toy_worlds", WORLDS)
        yield made


class BatchSpy:
    """What reaches the event log storage: batch writes (event types and sizes) and single
    writes, by event type."""

    def __init__(self, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
        storage = instance.event_log_storage
        self.batches: list[list[DagsterEventType]] = []
        self.singles: list[DagsterEventType | None] = []
        #: Events of a batch that the storage still wrote one by one (its fallback).
        self.unbundled: list[DagsterEventType | None] = []
        self._in_batch = False
        store_batch, store_one = storage.store_event_batch, storage.store_event

        def batch(events: Any) -> None:
            self.batches.append([e.get_dagster_event().event_type for e in events])
            self._in_batch = True
            try:
                store_batch(events)
            finally:
                self._in_batch = False

        def one(event: Any) -> None:
            kind = event.dagster_event.event_type if event.dagster_event else None
            (self.unbundled if self._in_batch else self.singles).append(kind)
            store_one(event)

        monkeypatch.setattr(storage, "store_event_batch", batch)
        monkeypatch.setattr(storage, "store_event", one)

    def batched(self, kind: DagsterEventType) -> int:
        return sum(types.count(kind) for types in self.batches)

    def single(self, kind: DagsterEventType) -> int:
        return self.singles.count(kind)


def run_range(instance: DagsterInstance) -> str:
    result = JOB.execute_in_process(instance=instance, tags=RANGE_TAGS, raise_on_error=False)
    assert not result.success, "the failing world's days must fail the step"
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert failure.step_failure_data.user_failure_data is not None
    return result.run_id


def statuses(instance: DagsterInstance, asset: AssetKey) -> dict[str, str | None]:
    found = instance.get_status_by_partition(asset, ALL_KEYS, toy_world_days)
    assert found is not None
    return {key: (status.value if status else None) for key, status in found.items()}


def materialized(instance: DagsterInstance, asset: AssetKey) -> set[str]:
    return {str(key) for key in instance.get_materialized_partitions(asset)}


def planned(instance: DagsterInstance, run_id: str) -> list[Any]:
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=10_000
    ).records
    events = [r.event_log_entry.dagster_event for r in records]
    return [e.asset_materialization_planned_data for e in events if e is not None]


def check_partitions(instance: DagsterInstance, run_id: str) -> set[str]:
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=10_000
    ).records
    return {
        str(r.event_log_entry.dagster_event.asset_check_evaluation_data.partition)
        for r in records
        if r.event_log_entry.dagster_event is not None
    }


def assert_statuses_exact(instance: DagsterInstance, run_id: str) -> None:
    """Finished world-days materialized once, failed ones FAILED, checks of the good ones."""
    for asset in ASSETS:
        assert materialized(instance, asset) == GOOD_KEYS, asset
        assert statuses(instance, asset) == {
            key: "FAILED" if key in FAILED_KEYS else "MATERIALIZED" for key in ALL_KEYS
        }, asset
    assert check_partitions(instance, run_id) == GOOD_KEYS


def test_without_switches_a_range_run_marks_each_world_day_on_its_own(
    instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BATCH_SIZE_VAR, raising=False)
    monkeypatch.delenv(SUBSET_VAR, raising=False)
    spy = BatchSpy(instance, monkeypatch)
    run_id = run_range(instance)
    assert_statuses_exact(instance, run_id)
    # One planned event per asset and world-day of the range, each written on its own.
    events = planned(instance, run_id)
    assert sorted((p.asset_key.path[0], p.partition) for p in events) == sorted(
        (asset.path[0], key) for asset in ASSETS for key in ALL_KEYS
    )
    assert spy.batches == []
    assert spy.single(DagsterEventType.ASSET_MATERIALIZATION_PLANNED) == len(ASSETS) * len(ALL_KEYS)


@pytest.mark.parametrize("batch_size", [3, 100])
def test_event_batch_size_batches_planned_events_and_keeps_per_partition_status(
    instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    """DAGSTER_EVENT_BATCH_SIZE changes how events reach the storage, not what they say, so
    the deployment may set it (deploy/helm/values.yaml, for the daemon, the webserver and the
    run workers) for steps that materialize a range with one Output."""
    monkeypatch.delenv(SUBSET_VAR, raising=False)
    monkeypatch.setenv(BATCH_SIZE_VAR, str(batch_size))
    spy = BatchSpy(instance, monkeypatch)
    run_id = run_range(instance)
    assert_statuses_exact(instance, run_id)
    events = planned(instance, run_id)
    assert len(events) == len(ASSETS) * len(ALL_KEYS)
    assert {p.partition for p in events} == set(ALL_KEYS)
    assert all(p.partitions_subset is None for p in events)
    # The planned events (24 materializations and the check's one, sorted by asset) reach
    # the storage in batches of at most N; a lone remainder is written as a single event.
    per_partition = len(ASSETS) * len(ALL_KEYS)
    assert spy.batches, "no batch was written"
    assert all(len(types) <= batch_size for types in spy.batches)
    in_batches = spy.batched(DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    assert in_batches + spy.single(DagsterEventType.ASSET_MATERIALIZATION_PLANNED) == (
        per_partition
    )
    assert in_batches >= per_partition - 1
    # ... and each storage still writes a batch of planned events event by event.
    assert spy.unbundled.count(DagsterEventType.ASSET_MATERIALIZATION_PLANNED) == in_batches
    # The step's own log_event materializations carry no batch metadata: one write each.
    assert spy.batched(DagsterEventType.ASSET_MATERIALIZATION) == 0
    assert spy.single(DagsterEventType.ASSET_MATERIALIZATION) == len(ASSETS) * len(GOOD_KEYS)


def test_partition_subset_in_planned_events_leaves_failed_world_days_unmarked(
    instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1 a range run plans each asset
    with one event, and a world-day that failed is no longer FAILED: it looks never
    materialized. The deployment relies on FAILED to show (and re-run) the world-days that
    failed, so it does not set this switch."""
    monkeypatch.delenv(BATCH_SIZE_VAR, raising=False)
    monkeypatch.setenv(SUBSET_VAR, "1")
    run_id = run_range(instance)
    events = planned(instance, run_id)
    assert len(events) == len(ASSETS)
    for p in events:
        assert p.partition is None
        assert p.partitions_subset is not None
        assert set(p.partitions_subset.get_partition_keys()) == set(ALL_KEYS)
    for asset in ASSETS:
        assert materialized(instance, asset) == GOOD_KEYS, asset
        assert statuses(instance, asset) == {
            key: None if key in FAILED_KEYS else "MATERIALIZED" for key in ALL_KEYS
        }, asset
    assert check_partitions(instance, run_id) == GOOD_KEYS
