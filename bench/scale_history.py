"""bench/scale.py, 1. setup: the worlds' partitions and the history the UI and the daemons
meet (runs and materializations of every past day), written in bulk."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from scale_env import (
    DAILY_ASSETS,
    DAILY_STEP,
    LOCATION,
    REPOSITORY,
    SCHEDULE,
    SENSOR,
    SETUP_ASSETS,
    SETUP_STEP,
    Figure,
    Layout,
    Report,
    T,
    clock,
)

if TYPE_CHECKING:
    from dagster import DagsterInstance
    from dagster._core.events.log import EventLogEntry

#: Rows per bulk insert of the history; big enough to amortise a connection per batch.
BATCH = 2000


def _run_row(run: Any, start: float, seconds: float) -> dict[str, Any]:
    """The ``runs`` row add_run would write, plus the start/end a finished run has."""
    from dagster._core.storage.tags import PARTITION_NAME_TAG, PARTITION_SET_TAG
    from dagster._serdes import serialize_value

    created = datetime.fromtimestamp(start - 5, UTC).replace(tzinfo=None)
    return {
        "run_id": run.run_id,
        "pipeline_name": run.job_name,
        "status": run.status.value,
        "run_body": serialize_value(run),
        "snapshot_id": None,
        "partition": run.tags.get(PARTITION_NAME_TAG),
        "partition_set": run.tags.get(PARTITION_SET_TAG),
        "create_timestamp": created,
        "update_timestamp": created + timedelta(seconds=seconds + 5),
        "start_time": start,
        "end_time": start + seconds,
        "backfill_id": None,
    }


def _materialization(
    asset: str, partition: str, tags: Mapping[str, str], run_id: str, job: str, at: float
) -> EventLogEntry:
    from dagster import AssetMaterialization
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry

    materialization = AssetMaterialization(asset_key=asset, partition=partition, tags=tags)
    step = SETUP_STEP if job == "populate_world" else DAILY_STEP
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name=job,
        step_key=step,
        event_specific_data=StepMaterializationData(materialization),
    )
    return EventLogEntry(
        user_message="",
        level=logging.INFO,
        job_name=job,
        run_id=run_id,
        error_info=None,
        timestamp=at,
        step_key=step,
        dagster_event=event,
    )


@dataclass(frozen=True)
class PastRun:
    """One finished run of the history and the partition it materialized."""

    run_id: str
    job: str
    partition: str
    partition_tags: Mapping[str, str]
    start: float


def _history_runs(worlds: Sequence[str], days: Sequence[date]) -> Iterator[tuple[PastRun, Any]]:
    """The runs a deployment has after ``days`` days: a setup per world, a run per world-day.

    Tagged as the sensor and the schedule tag them, so the UI's partition set statuses and
    the daemons' run-key lookups meet a realistic run table.
    """
    from dagster import DagsterRun
    from dagster._core.storage.dagster_run import DagsterRunStatus
    from dagster._core.storage.tags import (
        PARTITION_NAME_TAG,
        PARTITION_SET_TAG,
        REPOSITORY_LABEL_TAG,
        RUN_KEY_TAG,
        SCHEDULE_NAME_TAG,
        SCHEDULED_EXECUTION_TIME_TAG,
        SENSOR_NAME_TAG,
    )

    repository = f"{REPOSITORY}@{LOCATION}"
    setup_at = datetime.combine(days[0] - timedelta(days=1), datetime.min.time(), UTC)
    for index, world in enumerate(worlds):
        start = setup_at.timestamp() + 60 * index
        tags = {
            PARTITION_NAME_TAG: world,
            PARTITION_SET_TAG: "populate_world_partition_set",
            "generia/world": world,
            SENSOR_NAME_TAG: SENSOR,
            RUN_KEY_TAG: f"populate_world:{world}",
            REPOSITORY_LABEL_TAG: repository,
        }
        run_id = str(uuid.uuid4())
        run = DagsterRun(
            job_name="populate_world", run_id=run_id, status=DagsterRunStatus.SUCCESS, tags=tags
        )
        yield PastRun(run_id, "populate_world", world, {}, start), run
    for day in days:
        tick = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        tick += timedelta(hours=6)
        for index, world in enumerate(worlds):
            key = f"{day.isoformat()}|{world}"
            dims = {"dagster/partition/date": day.isoformat(), "dagster/partition/world": world}
            tags = {
                PARTITION_NAME_TAG: key,
                **dims,
                PARTITION_SET_TAG: "daily_posts_partition_set",
                "generia/world": world,
                SCHEDULE_NAME_TAG: SCHEDULE,
                SCHEDULED_EXECUTION_TIME_TAG: tick.isoformat(),
                RUN_KEY_TAG: key,
                REPOSITORY_LABEL_TAG: repository,
            }
            run_id = str(uuid.uuid4())
            run = DagsterRun(
                job_name="daily_posts", run_id=run_id, status=DagsterRunStatus.SUCCESS, tags=tags
            )
            yield PastRun(run_id, "daily_posts", key, dims, tick.timestamp() + 2 * index), run


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def record_history(
    instance: DagsterInstance, worlds: Sequence[str], days: Sequence[date]
) -> tuple[list[PastRun], float, float]:
    """Write the history runs and their materializations; (runs, runs s, events s).

    Dagster has no batch API for runs and add_run costs ~15 ms (two fresh connections), so
    90k would take ~20 minutes: the rows add_run writes go into Dagster's own run tables in
    batches, through the run storage's connection. The materializations go through the
    event log's batch write (what DAGSTER_EVENT_BATCH_SIZE uses), one asset per batch, since
    a batch updates the asset's latest-materialization row from its last event only.
    """
    from dagster._core.storage.runs.schema import RunsTable, RunTagsTable

    started = time.perf_counter()
    past: list[PastRun] = []
    for chunk in _chunks(_history_runs(worlds, days), BATCH):
        rows = [_run_row(run, item.start, 40.0) for item, run in chunk]
        tags = [
            {"run_id": run.run_id, "key": key, "value": value}
            for _, run in chunk
            for key, value in run.tags_for_storage().items()
        ]
        with instance.run_storage.connect() as conn:  # type: ignore[attr-defined]
            conn.execute(RunsTable.insert(), rows)
            conn.execute(RunTagsTable.insert(), tags)
        past.extend(item for item, _ in chunk)
    runs_s = time.perf_counter() - started

    started = time.perf_counter()
    for assets, job in ((SETUP_ASSETS, "populate_world"), (DAILY_ASSETS, "daily_posts")):
        mine = [item for item in past if item.job == job]
        for offset, asset in enumerate(assets):
            events = (
                _materialization(
                    asset,
                    item.partition,
                    item.partition_tags,
                    item.run_id,
                    job,
                    item.start + 10 * (offset + 1),
                )
                for item in mine
            )
            for batch in _chunks(events, BATCH):
                instance.event_log_storage.store_event_batch(batch)
    return past, runs_s, time.perf_counter() - started


def analyze(instance: DagsterInstance) -> str:
    """Refresh the planner's statistics, as autovacuum would have after 90 days; its setting.

    Without them PostgreSQL estimates a handful of rows per tag and joins the run tags by
    nested loops: the scheduler's lookup of an existing run per request then takes seconds.
    """
    import sqlalchemy

    with instance.run_storage.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(sqlalchemy.text("ANALYZE"))
        return str(conn.execute(sqlalchemy.text("SHOW autovacuum")).scalar())


def bench_setup(
    instance: DagsterInstance, report: Report, layout: Layout, worlds: Sequence[str]
) -> None:
    """Partitions, then the history up to the tick: every day but the one the tick requests.

    Earlier ticks made the earlier days; the schedule tick measured next makes the last one
    (a history run for it would carry the tick's run key and the daemon would skip it).
    """
    from dagster import AssetKey, DagsterRunStatus, RunsFilter

    seconds, _ = clock(lambda: instance.add_dynamic_partitions("worlds", list(worlds)))
    report.add(Figure("setup", "add dynamic partitions (worlds)", seconds, count=len(worlds)))
    known = instance.get_dynamic_partitions("worlds")
    report.expect(len(known) == len(worlds), f"worlds partitions: {len(known)} != {len(worlds)}")

    past, runs_s, events_s = record_history(instance, worlds, layout.past_days)
    made = len(worlds) * len(layout.past_days)
    report.add(
        Figure(
            "setup",
            "history runs (bulk rows)",
            runs_s,
            count=len(past),
            note=f"{len(worlds)} populate_world + {made} daily_posts",
        )
    )
    report.add(
        Figure(
            "setup",
            "history materializations (event batches)",
            events_s,
            count=3 * len(past),
            note=f"{made} world-days × {len(DAILY_ASSETS)} assets + setup assets",
        )
    )
    seconds, autovacuum = clock(lambda: analyze(instance))
    report.add(
        Figure("setup", "ANALYZE after the bulk load", seconds, note=f"autovacuum {autovacuum}")
    )
    finished = instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
    report.expect(finished == len(past), f"history runs stored: {finished} != {len(past)}")
    for asset, expected in (("posts", made), ("character_avatars", len(worlds))):
        stored = len(instance.get_materialized_partitions(AssetKey(asset)))
        report.expect(stored == expected, f"{asset}: {stored} materialized, not {expected}")


def mark_set_up(instance: DagsterInstance, worlds: Sequence[str]) -> float:
    """Record the setup assets of ``worlds`` materialized, as their setup runs would have;
    the seconds it took (not a figure: it stands in for the runs' work)."""
    started = time.perf_counter()
    run_id, at = str(uuid.uuid4()), time.time()
    for offset, asset in enumerate(SETUP_ASSETS):
        events = (
            _materialization(asset, world, {}, run_id, "populate_world", at + offset)
            for world in worlds
        )
        for batch in _chunks(events, BATCH):
            instance.event_log_storage.store_event_batch(batch)
    return time.perf_counter() - started
