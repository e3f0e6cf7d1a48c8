"""bench/scale.py, 4. new_worlds_sensor ticks, in process, through the code server and through
the sensor daemon (``execute_sensor_iteration``, which also creates the runs):

- (a) steady state, every world known;
- (c) GENERIA_BACKFILL_DAYS=7 with every world set up: the first tick, then the next one
  (deduplicated by the sensor's cursor);
- (b) a catalog of only new worlds with GENERIA_BACKFILL_DAYS=7, tick after tick: their
  partitions and setup runs, then (their setup materialized in bulk, standing in for the
  runs) their 7 past days, then nothing. The sum is the new worlds' sensor and daemon time.

Every request is checked: run counts (K partitions per run), every partition covered once,
the tags of range runs.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scale_daemon import (
    _daemon_logger,
    _errors,
    _finish,
    covered,
    daemon_pools,
    daemon_workspace,
    event_batch,
    tag_problems,
)
from scale_env import (
    LOCATION,
    REPOSITORY,
    SENSOR,
    SENSOR_BACKFILL_DAYS,
    Figure,
    Layout,
    Report,
    Settings,
    clock,
    profiled,
    repeated,
    world_ids,
    write_worlds,
)
from scale_history import mark_set_up

if TYPE_CHECKING:
    from dagster import DagsterInstance
    from dagster._core.definitions.sensor_definition import SensorExecutionData
    from dagster._core.workspace.context import WorkspaceProcessContext


@dataclass(frozen=True)
class SensorCase:
    """A catalog state and what the sensor must answer."""

    label: str
    worlds: Sequence[str]
    backfill_days: int
    setup: Sequence[str] = ()  # worlds whose setup is requested
    backfill: Sequence[str] = ()  # worlds whose past days are requested
    new_partitions: int = 0

    def runs(self, per_run: int, days: int) -> tuple[int, int]:
        """populate_world and daily_posts runs expected with K = ``per_run``, as the sensor
        cuts them: K worlds' setup per run; all ``days`` of K // days worlds per run."""
        populate = math.ceil(len(self.setup) / per_run)
        if not self.backfill or not days:
            return populate, 0
        days_per_run = min(days, per_run)
        worlds_per_run = max(1, per_run // days_per_run)
        daily = math.ceil(len(self.backfill) / worlds_per_run) * math.ceil(days / days_per_run)
        return populate, daily


def _check_sensor_result(
    instance: DagsterInstance,
    report: Report,
    layout: Layout,
    case: SensorCase,
    result: SensorExecutionData,
    how: str,
) -> None:
    """Counts, unique run keys, every partition covered once, and the runs' tags."""
    from generia_pipelines.assets.batch import partitions_per_run

    requests = list(result.run_requests or [])
    days = [d.isoformat() for d in layout.days[-case.backfill_days :]] if case.backfill_days else []
    want = case.runs(partitions_per_run(), len(days))
    jobs = [request.job_name for request in requests]
    got = (jobs.count("populate_world"), jobs.count("daily_posts"))
    report.expect(
        got == want,
        f"{how} {case.label}: {got[0]} populate_world + {got[1]} daily_posts requests, "
        f"not {want[0]} + {want[1]}",
    )
    keys = [request.run_key for request in requests]
    report.expect(len(set(keys)) == len(keys), f"{how} {case.label}: repeated run keys")
    known = list(instance.get_dynamic_partitions("worlds"))
    order = known + [w for w in case.worlds if w not in set(known)]
    for job, expected in (
        ("populate_world", list(case.setup)),
        ("daily_posts", [f"{day}|{world}" for day in days for world in case.backfill]),
    ):
        made = [
            key
            for r in requests
            if r.job_name == job
            for key in covered(
                r.tags, str(r.partition_key) if r.partition_key else None, order, days
            )
        ]
        report.expect(
            sorted(made) == sorted(expected),
            f"{how} {case.label}: {job} requests cover {len(made)} partitions "
            f"({len(set(made))} distinct), not the {len(expected)} expected",
        )
    wrong = [
        problem
        for r in requests
        if (problem := tag_problems(r.tags, str(r.partition_key) if r.partition_key else None))
    ]
    report.expect(not wrong, f"{how} {case.label}: {wrong[:3]}")
    added = sum(len(r.partition_keys or []) for r in result.dynamic_partitions_requests or [])
    report.expect(
        added == case.new_partitions,
        f"{how} {case.label}: {added} new partitions requested, not {case.new_partitions}",
    )
    if not requests and not added:
        report.expect(bool(result.skip_message), f"{how} {case.label}: no skip reason")


def _sensor_cursor(instance: DagsterInstance, remote: Any) -> str | None:
    state = instance.get_instigator_state(remote.get_remote_origin_id(), remote.selector_id)
    data = state.instigator_data if state else None
    return getattr(data, "cursor", None)


def _age_sensor_state(instance: DagsterInstance, remote: Any) -> None:
    """Stand in for the sensor's 60 s minimum interval: its last tick began 2 minutes ago."""
    from dagster._core.scheduler.instigation import SensorInstigatorData

    state = instance.get_instigator_state(remote.get_remote_origin_id(), remote.selector_id)
    data = state.instigator_data if state else None
    if state is None or not isinstance(data, SensorInstigatorData):
        return
    if not data.last_tick_timestamp:
        return
    earlier = time.time() - 120
    aged = data._replace(last_tick_timestamp=earlier, last_tick_start_timestamp=earlier)
    instance.update_instigator_state(state.with_data(aged))


def bench_sensor_case(
    instance: DagsterInstance,
    report: Report,
    layout: Layout,
    case: SensorCase,
    context: WorkspaceProcessContext,
    settings: Settings,
    daemon_ticks: int = 1,
) -> list[tuple[float, int]]:
    """Evaluate the case's tick in process and through the code server, then run the
    daemon's ticks; each daemon tick's (seconds, runs created)."""
    from dagster import build_sensor_context

    from generia_pipelines.definitions import defs
    from generia_pipelines.resources.catalog import CatalogResource

    sensor = defs.resolve_sensor_def(SENSOR)

    write_worlds(layout.worlds_file, case.worlds)
    location = context.create_request_context().get_code_location(LOCATION)
    repository = location.get_repository(REPOSITORY)
    remote = repository.get_sensor(SENSOR)
    cursor = _sensor_cursor(instance, remote)
    slug = case.label.split(":")[0].strip().replace(" ", "_")

    def in_process() -> SensorExecutionData:
        # As the code server evaluates a tick: with an instance ref, so the requests are
        # resolved against their job and the instance's partitions, plus the ones it adds.
        sensor_context = build_sensor_context(
            instance=instance,
            instance_ref=instance.get_ref(),
            resources={"catalog": CatalogResource(worlds_file=str(layout.worlds_file))},
            cursor=cursor,
            definitions=defs,
        )
        return sensor.evaluate_tick(sensor_context)

    previous = os.environ.get("GENERIA_BACKFILL_DAYS", "0")
    os.environ["GENERIA_BACKFILL_DAYS"] = str(case.backfill_days)
    reps = settings.reps
    try:
        with profiled(settings.profile, f"sensor_{slug}_in_process"):
            first, median, result = repeated(in_process, reps)
    finally:
        os.environ["GENERIA_BACKFILL_DAYS"] = previous
    requests = len(result.run_requests or [])
    report.add(
        Figure("sensor", f"{case.label}: evaluate in process", median, first, reps, requests)
    )
    _check_sensor_result(instance, report, layout, case, result, "in-process sensor")

    def via_code_server() -> SensorExecutionData:
        return location.get_sensor_execution_data(
            instance=instance,
            repository_handle=repository.handle,
            name=SENSOR,
            last_tick_completion_time=None,
            last_run_key=None,
            cursor=cursor,
            log_key=None,
            last_sensor_start_time=None,
        )

    first, median, data = repeated(via_code_server, reps)
    report.add(
        Figure(
            "sensor",
            f"{case.label}: evaluation via code server (gRPC)",
            median,
            first,
            reps,
            len(data.run_requests or []),
        )
    )
    _check_sensor_result(instance, report, layout, case, data, "code-server sensor")
    return daemon_sensor_ticks(instance, report, layout, case, context, settings, daemon_ticks)


def daemon_sensor_ticks(
    instance: DagsterInstance,
    report: Report,
    layout: Layout,
    case: SensorCase,
    context: WorkspaceProcessContext,
    settings: Settings,
    daemon_ticks: int,
) -> list[tuple[float, int]]:
    from dagster._core.scheduler.instigation import InstigatorStatus, TickStatus
    from dagster._daemon.sensor import execute_sensor_iteration

    location = context.create_request_context().get_code_location(LOCATION)
    remote = location.get_repository(REPOSITORY).get_sensor(SENSOR)
    state = instance.get_instigator_state(remote.get_remote_origin_id(), remote.selector_id)
    if state is None or state.status != InstigatorStatus.RUNNING:
        instance.start_sensor(remote)
    origin_id, selector_id = remote.get_remote_origin_id(), remote.selector_id
    slug = case.label.split(":")[0].strip().replace(" ", "_")

    def daemon_tick() -> list[Any]:
        futures: dict[str, Future[Any]] = {}
        with daemon_pools(settings.submit_workers) as (ticks, submit):
            yielded = list(
                execute_sensor_iteration(
                    context,
                    _daemon_logger(layout),
                    threadpool_executor=ticks,
                    submit_threadpool_executor=submit,
                    sensor_tick_futures=futures,
                )
            )
            _finish(futures)
        return yielded

    from generia_pipelines.assets.batch import partitions_per_run

    days = min(case.backfill_days, len(layout.days))
    first_tick = sum(case.runs(partitions_per_run(), days))
    batch = f"DAGSTER_EVENT_BATCH_SIZE={settings.event_batch}" if settings.event_batch else ""
    done: list[tuple[float, int]] = []
    for number in range(1, daemon_ticks + 1):
        runs_before = instance.get_runs_count()
        _age_sensor_state(instance, remote)
        with (
            event_batch(settings.event_batch),
            profiled(settings.profile, f"sensor_{slug}_daemon_tick{number}"),
        ):
            seconds, yielded = clock(daemon_tick)
        errors = _errors(yielded)
        report.expect(not errors, f"sensor daemon {case.label}: {errors[:1]}")
        tick = next(iter(instance.get_ticks(origin_id, selector_id, limit=1)), None)
        if not report.expect(tick is not None, f"sensor daemon {case.label}: no tick"):
            return done
        assert tick is not None
        created = instance.get_runs_count() - runs_before
        done.append((seconds, created))
        expected = first_tick if number == 1 else 0
        recorded = (tick.end_timestamp or tick.timestamp) - tick.timestamp
        what = "daemon tick" if daemon_ticks == 1 else f"daemon tick {number}"
        report.add(
            Figure(
                "sensor",
                f"{case.label}: {what}",
                seconds,
                count=created,
                note=f"{settings.submission}; {batch}; tick record {recorded:.2f} s, "
                f"{tick.status.value}",
            )
        )
        report.expect(
            created == expected,
            f"sensor daemon {case.label} tick {number}: {created} runs, not {expected}",
        )
        status_ok = tick.status in (
            (TickStatus.SUCCESS,) if expected else (TickStatus.SKIPPED, TickStatus.SUCCESS)
        )
        report.expect(status_ok, f"sensor daemon {case.label}: tick status {tick.status}")
    return done


def bench_sensor(
    instance: DagsterInstance,
    report: Report,
    layout: Layout,
    worlds: Sequence[str],
    context: WorkspaceProcessContext,
    settings: Settings,
) -> None:
    """The three cases in turn; one failing is reported and the next still runs."""
    from dagster import AssetKey

    n = len(worlds)

    def attempt(case: SensorCase, body: Callable[[], None]) -> None:
        try:
            body()
        except Exception as exc:
            report.expect(False, f"sensor {case.label}: {type(exc).__name__}: {exc}")

    steady = SensorCase("(a) steady, all worlds known", worlds, 0)

    def steady_case() -> None:
        bench_sensor_case(instance, report, layout, steady, context, settings)

    attempt(steady, steady_case)

    ready = len(instance.get_materialized_partitions(AssetKey("character_avatars")))
    report.expect(ready == n, f"{ready} worlds with avatars, not {n}")
    days = SENSOR_BACKFILL_DAYS
    backfill = SensorCase(f"(c) backfill {days} days", worlds, days, backfill=worlds)
    new = world_ids("bench-new", n)
    label = f"(b) {n} new worlds, backfill {days} days"
    setup = SensorCase(f"{label}: tick 1", new, days, setup=new, new_partitions=n)
    past = SensorCase(f"{label}: tick 2", new, days, backfill=new)

    with daemon_workspace(instance, layout, days) as backfill_context:

        def backfill_case() -> None:
            bench_sensor_case(instance, report, layout, backfill, backfill_context, settings, 2)

        attempt(backfill, backfill_case)

        def fresh_case() -> None:
            ticks = bench_sensor_case(instance, report, layout, setup, backfill_context, settings)
            known = set(instance.get_dynamic_partitions("worlds"))
            report.expect(set(new) <= known, "the sensor daemon did not add the new worlds")
            mark_set_up(instance, new)
            ticks += bench_sensor_case(
                instance, report, layout, past, backfill_context, settings, 2
            )
            report.add(
                Figure(
                    "sensor",
                    f"{label}: all daemon ticks (setup, past days, nothing left)",
                    sum(seconds for seconds, _ in ticks),
                    count=sum(runs for _, runs in ticks),
                    note=f"{len(ticks)} ticks; runs: " + ", ".join(str(runs) for _, runs in ticks),
                )
            )

        attempt(setup, fresh_case)
