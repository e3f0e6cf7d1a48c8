"""bench/scale.py, 2. the daily_posts_schedule tick of the latest day: evaluated in process,
through the code server (gRPC), and the daemon's whole tick (``launch_scheduled_runs``:
evaluation, then creating and queueing the runs, each range run with its planned events).

The daemon's tick runs twice, on two days, so that both settings are measured on the same
history: the day before the last without DAGSTER_EVENT_BATCH_SIZE (Dagster's default), then
the last day with it (what deploy/ sets).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cpu import CpuMeter
from scale_daemon import (
    _daemon_logger,
    _errors,
    _finish,
    covered,
    daemon_pools,
    event_batch,
    events_of_runs,
    tag_problems,
)
from scale_env import (
    LOCATION,
    REPOSITORY,
    SCHEDULE,
    Figure,
    Layout,
    Report,
    Settings,
    clock,
    profiled,
)
from scale_env import repeated as repeated_calls

if TYPE_CHECKING:
    from dagster import DagsterInstance, RunRequest
    from dagster._core.workspace.context import WorkspaceProcessContext


def _check_requests(
    report: Report,
    requests: Sequence[RunRequest],
    day: str,
    worlds: Sequence[str],
    per_run: int,
    how: str,
) -> None:
    """ceil(worlds / K) requests covering every world's ``day`` once, tagged as range runs."""
    days = [day]
    want = math.ceil(len(worlds) / per_run)
    report.expect(len(requests) == want, f"{how}: {len(requests)} run requests, not {want}")
    keys = [
        k
        for r in requests
        for k in covered(r.tags, str(r.partition_key) if r.partition_key else None, worlds, days)
    ]
    expected = [f"{day}|{world}" for world in worlds]
    report.expect(
        sorted(keys) == sorted(expected),
        f"{how}: the requests cover {len(keys)} world-days ({len(set(keys))} distinct), "
        f"not the {len(expected)} of {day}",
    )
    wrong = [
        problem
        for r in requests
        if (problem := tag_problems(r.tags, str(r.partition_key) if r.partition_key else None))
    ]
    report.expect(not wrong, f"{how}: {wrong[:3]}")
    jobs = {request.job_name for request in requests} - {None, "daily_posts"}
    report.expect(not jobs, f"{how}: requests for other jobs {sorted(map(str, jobs))}")


def bench_schedule(
    instance: DagsterInstance,
    report: Report,
    layout: Layout,
    worlds: Sequence[str],
    context: WorkspaceProcessContext,
    settings: Settings,
) -> None:
    from dagster import build_schedule_context, partition_loading_context
    from dagster._core.definitions.timestamp import TimestampWithTimezone

    from generia_pipelines.assets.batch import partitions_per_run
    from generia_pipelines.definitions import defs
    from generia_pipelines.resources.catalog import CatalogResource

    per_run = partitions_per_run()
    schedule = defs.resolve_schedule_def(SCHEDULE)
    last_day = layout.last_day.isoformat()

    def in_process() -> list[RunRequest]:
        # As the code server evaluates a tick: the instance is the dynamic partitions store.
        with partition_loading_context(effective_dt=layout.tick, dynamic_partitions_store=instance):
            tick_context = build_schedule_context(
                instance=instance,
                scheduled_execution_time=layout.tick,
                resources={"catalog": CatalogResource.from_env()},
            )
            return list(schedule.evaluate_tick(tick_context).run_requests or [])

    reps = settings.reps
    with profiled(settings.profile, "schedule_in_process"):
        first, median, requests = repeated_calls(in_process, reps)
    report.add(Figure("schedule", "evaluate_tick in process", median, first, reps, len(requests)))
    _check_requests(report, requests, last_day, worlds, per_run, "in-process schedule")

    location = context.create_request_context().get_code_location(LOCATION)
    repository = location.get_repository(REPOSITORY)
    remote = repository.get_schedule(SCHEDULE)

    def via_code_server() -> list[RunRequest]:
        data = location.get_schedule_execution_data(
            instance=instance,
            repository_handle=repository.handle,
            schedule_name=SCHEDULE,
            scheduled_execution_time=TimestampWithTimezone(layout.tick.timestamp(), "UTC"),
            log_key=None,
        )
        return list(data.run_requests or [])

    first, median, requests = repeated_calls(via_code_server, reps)
    report.add(
        Figure("schedule", "evaluation via code server (gRPC)", median, first, reps, len(requests))
    )
    _check_requests(report, requests, last_day, worlds, per_run, "code-server schedule")

    from dagster._core.test_utils import freeze_time

    # Turned on a minute before the first measured tick (the day before), then the daemon's
    # iteration a second after each tick.
    earlier = layout.tick - timedelta(days=1)
    with freeze_time(earlier - timedelta(minutes=1)):
        instance.start_schedule(remote)
    run_ids = daemon_tick(
        instance, report, layout, worlds, context, settings, earlier, 0, layout.days[-2]
    )
    # Its queued runs would show that day's partitions as materializing: gone, the UI and
    # the sensor meet the history and the last tick's runs only.
    for run_id in run_ids:
        instance.delete_run(run_id)
    daemon_tick(
        instance,
        report,
        layout,
        worlds,
        context,
        settings,
        layout.tick,
        settings.event_batch,
        layout.last_day,
    )


def daemon_tick(
    instance: DagsterInstance,
    report: Report,
    layout: Layout,
    worlds: Sequence[str],
    context: WorkspaceProcessContext,
    settings: Settings,
    tick_at: datetime,
    batch: int,
    day: Any,
) -> list[str]:
    """One whole tick of the scheduler daemon at ``tick_at``, and what it left queued; the
    ids of the runs it created."""
    from dagster import DagsterRunStatus
    from dagster._core.scheduler.instigation import TickStatus
    from dagster._scheduler.scheduler import launch_scheduled_runs

    from generia_pipelines.assets.batch import partitions_per_run

    location = context.create_request_context().get_code_location(LOCATION)
    remote = location.get_repository(REPOSITORY).get_schedule(SCHEDULE)
    meter = CpuMeter({}, database=layout.database)

    def tick() -> list[Any]:
        futures: dict[str, Future[Any]] = {}
        with daemon_pools(settings.submit_workers) as (ticks, submit):
            yielded = list(
                launch_scheduled_runs(
                    context,
                    _daemon_logger(layout),
                    end_datetime_utc=tick_at + timedelta(seconds=1),
                    iteration_times={},
                    threadpool_executor=ticks,
                    submit_threadpool_executor=submit,
                    scheduler_run_futures=futures,
                )
            )
            _finish(futures)
        return yielded

    name = f"schedule_daemon_tick_batch{batch}"
    before = meter.sample()
    started = time.time()
    with event_batch(batch), profiled(settings.profile, name):
        seconds, yielded = clock(tick)
    cpu = CpuMeter.delta(before, meter.sample())
    meter.close()
    errors = _errors(yielded)
    report.expect(not errors, f"scheduler daemon errors: {errors[:1]}")
    ticks = instance.get_ticks(remote.get_remote_origin_id(), remote.selector_id, limit=1)
    if not report.expect(bool(ticks), "the scheduler daemon recorded no tick"):
        return []
    record = ticks[0]
    recorded = (record.end_timestamp or started) - started
    setting = f"DAGSTER_EVENT_BATCH_SIZE={batch}" if batch else "no event batches"
    events = events_of_runs(instance, list(record.run_ids))
    report.add(
        Figure(
            "schedule",
            f"daemon tick, {day.isoformat()}: evaluate + create & queue runs ({setting})",
            seconds,
            count=len(record.run_ids),
            note=f"{settings.submission}; tick record ends after {recorded:.2f} s; "
            f"{events} events stored; CPU s: daemon {cpu['harness']}, postgres "
            f"{cpu.get('postgres', 0)} (this database ~{cpu.get('postgres_db', 0)}), rest of "
            f"machine {cpu['other']}",
        )
    )
    report.expect(record.status == TickStatus.SUCCESS, f"schedule tick status {record.status}")
    want = math.ceil(len(worlds) / partitions_per_run())
    report.expect(
        len(record.run_ids) == want, f"schedule tick: {len(record.run_ids)} runs, not {want}"
    )
    runs = [instance.get_run_by_id(run_id) for run_id in record.run_ids]
    queued = [r for r in runs if r is not None and r.status == DagsterRunStatus.QUEUED]
    report.expect(len(queued) == want, f"schedule tick: {len(queued)} queued runs, not {want}")
    keys = [
        k
        for r in queued
        for k in covered(r.tags, r.tags.get("dagster/partition"), worlds, [day.isoformat()])
    ]
    report.expect(
        sorted(keys) == sorted(f"{day.isoformat()}|{w}" for w in worlds),
        f"schedule tick: its runs cover {len(keys)} world-days, not the {len(worlds)} of {day}",
    )
    wrong = [p for r in queued if (p := tag_problems(r.tags, r.tags.get("dagster/partition")))]
    report.expect(not wrong, f"queued runs with wrong tags: {wrong[:3]}")
    return list(record.run_ids)
