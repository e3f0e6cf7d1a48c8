"""Dagster automation and the UI's partition queries at 1,000 worlds × 90 days on PostgreSQL.

Run: .venv/bin/python bench/scale.py [--worlds 1000] [--days 90] [--json PATH] [--keep]
     .venv/bin/python bench/scale.py --smoke   # 10 worlds × 5 days: a correctness check for CI

A fresh PostgreSQL database per run (dropped at the end unless ``--keep``) behind a
DAGSTER_HOME whose dagster.yaml is deploy/dagster.yaml with literal connection values; the
catalog is a generated worlds file; the package is copied first, so every process of the
run loads the same code. The tick is today's 06:00 UTC and the date partitions end
yesterday: exactly ``--days`` of them. Measured, in order:

1. setup: the worlds' dynamic partitions, then the history the UI shows: one daily_posts run
   per world and day with its three materializations, one populate_world run per world with
   its three; written in bulk (not a target).
2. the daily_posts_schedule tick of the latest day: evaluated in process, through the code
   server (gRPC), and as the scheduler daemon runs it: ``launch_scheduled_runs`` at a
   simulated 06:00, which evaluates and then creates and queues one run per world.
3. the GraphQL queries the UI sends for partitions, over HTTP to a real dagster-webserver.
4. new_worlds_sensor ticks, in process, through the code server and through the sensor
   daemon (``execute_sensor_iteration``): steady state, GENERIA_BACKFILL_DAYS=7 with every
   world set up (the first tick, then the next one, deduplicated by run key), and a catalog
   of only new worlds.

Figures are seconds: the first (cold) call and the median of ``--reps`` more. The daemons
submit runs one after the other, as deploy/dagster.yaml configures them; ``--submit-workers
N`` measures them with ``use_threads`` and N submit threads instead. The exit status is 1
when a result is wrong (request or run counts, tags, a tick's status, a GraphQL error); no
duration is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import psycopg2
import yaml

if TYPE_CHECKING:
    from dagster import DagsterInstance, RunRequest
    from dagster._core.definitions.sensor_definition import SensorExecutionData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.workspace.context import WorkspaceProcessContext

ROOT = Path(__file__).resolve().parents[1]
LOCATION = "generia_pipelines"
REPOSITORY = "__repository__"
SCHEDULE = "daily_posts_schedule"
SENSOR = "new_worlds_sensor"
DAILY_ASSETS = ("post_drafts", "post_images", "posts")
SETUP_ASSETS = ("world_brief", "characters", "character_avatars")
SENSOR_BACKFILL_DAYS = 7
PG_HOST, PG_PORT, PG_USERS = "127.0.0.1", 5432, ("postgres", "root")
#: Rows per bulk insert of the history; big enough to amortise a connection per batch.
BATCH = 2000
WEBSERVER_START_S = 180.0
QUERY_TIMEOUT_S = 600.0

T = TypeVar("T")


# --- figures and problems ------------------------------------------------------------------


@dataclass
class Figure:
    """One measured time; ``first`` is the cold call when ``seconds`` is a median of reps."""

    section: str
    measure: str
    seconds: float
    first: float | None = None
    reps: int = 1
    count: int | None = None
    note: str = ""


@dataclass
class Report:
    """Figures to print and problems that make the run fail."""

    figures: list[Figure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(f"  {figure.section:<9} {figure.measure:<52} {figure.seconds:9.3f} s", flush=True)
        return figure

    def expect(self, ok: bool, problem: str) -> bool:
        """Record ``problem`` unless ``ok``; the run then exits non-zero."""
        if not ok:
            self.problems.append(problem)
            print(f"  PROBLEM: {problem}", flush=True)
        return ok

    def table(self) -> str:
        header = ("section", "measure", "first s", "median s", "reps", "count", "note")
        rows = [
            (
                f.section,
                f.measure,
                "" if f.first is None else f"{f.first:.3f}",
                f"{f.seconds:.3f}",
                str(f.reps),
                "" if f.count is None else str(f.count),
                f.note,
            )
            for f in self.figures
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        rule = "  ".join("-" * w for w in widths)
        head = "  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))
        return "\n".join([head, rule, *lines])


@dataclass(frozen=True)
class Settings:
    """How to measure: warm repetitions, cProfile output, the daemons' submit threads."""

    reps: int
    profile: Path | None
    submit_workers: int  # 0: the daemons' default, one run after the other

    @property
    def submission(self) -> str:
        if not self.submit_workers:
            return "runs submitted serially (daemon default)"
        return f"{self.submit_workers} submit threads (use_threads, num_submit_workers)"


def clock(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def repeated(fn: Callable[[], T], reps: int) -> tuple[float, float, T]:
    """(first call, median of ``reps`` further calls, last result): cold and warm figures."""
    first, value = clock(fn)
    warm = []
    for _ in range(reps):
        seconds, value = clock(fn)
        warm.append(seconds)
    return first, statistics.median(warm) if warm else first, value


@contextlib.contextmanager
def profiled(directory: Path | None, name: str) -> Iterator[None]:
    """cProfile the block into ``directory/name.prof`` when profiling is on."""
    if directory is None:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        directory.mkdir(parents=True, exist_ok=True)
        profile.dump_stats(directory / f"{name}.prof")


# --- the environment: database, DAGSTER_HOME, worlds file ----------------------------------


def _admin_connection() -> tuple[Any, str]:
    """An autocommit connection to the server's ``postgres`` database, and its user."""
    errors = []
    for user in PG_USERS:
        try:
            conn = psycopg2.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname="postgres", connect_timeout=10
            )
        except psycopg2.OperationalError as exc:
            errors.append(f"{user}: {exc}".strip())
            continue
        conn.autocommit = True
        return conn, user
    raise SystemExit(f"cannot reach PostgreSQL on {PG_HOST}:{PG_PORT}: {'; '.join(errors)}")


@contextlib.contextmanager
def fresh_database(keep: bool) -> Iterator[tuple[str, str]]:
    """A new empty database ``(user, name)``, dropped on exit unless ``keep``."""
    name = f"generia_bench_scale_{os.getpid()}"
    conn, user = _admin_connection()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    try:
        yield user, name
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            conn, _ = _admin_connection()
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.close()


@dataclass(frozen=True)
class Layout:
    """Where this run's files are, and the simulated day."""

    root: Path
    home: Path
    worlds_file: Path
    workspace_file: Path
    tick: datetime  # the schedule's tick: 06:00 UTC today
    days: tuple[date, ...]  # the date partitions, oldest first; the last is yesterday

    @property
    def last_day(self) -> date:
        """The day the tick requests."""
        return self.days[-1]

    @property
    def past_days(self) -> tuple[date, ...]:
        """The days made before the tick."""
        return self.days[:-1]


def prepare(root: Path, user: str, database: str, days: int) -> Layout:
    """Write dagster.yaml, workspace.yaml and point the environment at them.

    Runs before anything imports generia_pipelines: the date partitions are built at import
    from GENERIA_POSTS_START_DATE. The tick is today's 06:00 UTC, so the date partitions end
    yesterday for this process, the code servers and the webserver alike: exactly ``days``.
    """
    code = snapshot_code(root)
    home = root / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    config["storage"]["postgres"]["postgres_db"] = {
        "hostname": PG_HOST,
        "port": PG_PORT,
        "username": user,
        "password": "",
        "db_name": database,
        "scheme": "postgresql+psycopg2",
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    workspace = root / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_module": {
                            "module_name": "generia_pipelines.definitions",
                            "working_directory": str(code),
                            "location_name": LOCATION,
                        }
                    }
                ]
            }
        )
    )
    today = datetime.now(UTC).date()
    all_days = tuple(today - timedelta(days=back) for back in range(days, 0, -1))
    os.environ.update(
        {
            "DAGSTER_HOME": str(home),
            "GENERIA_WORLDS_FILE": str(root / "worlds.yaml"),
            "GENERIA_POSTS_START_DATE": all_days[0].isoformat(),
            "GENERIA_BACKFILL_DAYS": "0",
            # Resolved when the daemon builds a run's execution plan; nothing calls Runware.
            "RUNWARE_API_KEY": "bench-placeholder",
        }
    )
    os.environ.pop("GENERIA_WORLD_ADDR", None)  # the catalog is the worlds file
    tick = datetime(today.year, today.month, today.day, 6, tzinfo=UTC)
    return Layout(root, home, root / "worlds.yaml", workspace, tick, all_days)


def snapshot_code(root: Path) -> Path:
    """Copy the package so this process, the code servers and the webserver run one version.

    A full run lasts an hour and starts code servers along the way: edits to the working
    tree in the meantime would otherwise be measured half-way. PYTHONPATH and sys.path put
    the copy ahead of the editable install.
    """
    code = root / "code"
    shutil.copytree(
        ROOT / "generia_pipelines",
        code / "generia_pipelines",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    sys.path.insert(0, str(code))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(code), os.environ.get("PYTHONPATH")) if part
    )
    return code


def world_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{index:04d}" for index in range(count)]


def write_worlds(path: Path, ids: Sequence[str]) -> None:
    """A worlds file the sensor reads; rewritten in place, the catalog re-reads it."""
    worlds = [
        {
            "id": world_id,
            "name": world_id.replace("-", " ").title(),
            "prompt": f"A benchmark world numbered {world_id}, full of harbours and markets",
            "characters": 8,
            "posts_per_day": 10,
        }
        for world_id in ids
    ]
    path.write_text(yaml.safe_dump({"worlds": worlds}, sort_keys=False))


# --- 1. setup: partitions and history ------------------------------------------------------


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
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name=job,
        step_key=asset,
        event_specific_data=StepMaterializationData(materialization),
    )
    return EventLogEntry(
        user_message="",
        level=logging.INFO,
        job_name=job,
        run_id=run_id,
        error_info=None,
        timestamp=at,
        step_key=asset,
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


# --- the daemon's view: a workspace with its own code server -------------------------------


@contextlib.contextmanager
def daemon_workspace(
    instance: DagsterInstance, layout: Layout, backfill_days: int
) -> Iterator[WorkspaceProcessContext]:
    """The workspace as the daemon loads it: a gRPC code server started from workspace.yaml.

    The code server takes its environment when it starts, so GENERIA_BACKFILL_DAYS is set
    for its start and each value needs its own workspace.
    """
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._daemon.controller import create_daemon_grpc_server_registry

    previous = os.environ.get("GENERIA_BACKFILL_DAYS")
    os.environ["GENERIA_BACKFILL_DAYS"] = str(backfill_days)
    try:
        target = WorkspaceFileTarget(paths=[str(layout.workspace_file)])
        with (
            create_daemon_grpc_server_registry(instance) as registry,
            WorkspaceProcessContext(instance, target, grpc_server_registry=registry) as context,
        ):
            entry = context.create_request_context().get_code_location_entries()[LOCATION]
            if entry.code_location is None:
                raise RuntimeError(f"code location did not load: {entry.load_error}")
            yield context
    finally:
        os.environ["GENERIA_BACKFILL_DAYS"] = previous or "0"


def _daemon_logger(layout: Layout) -> logging.Logger:
    """The daemons log a line per run: into a file, as a daemon would, not the console."""
    logger = logging.getLogger("generia.bench.daemon")
    if not logger.handlers:
        logger.addHandler(logging.FileHandler(layout.root / "daemon.log"))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def _errors(yielded: Iterable[Any]) -> list[str]:
    from dagster._utils.error import SerializableErrorInfo

    return [str(item) for item in yielded if isinstance(item, SerializableErrorInfo)]


@contextlib.contextmanager
def daemon_pools(workers: int) -> Iterator[tuple[ThreadPoolExecutor | None, ...]]:
    """The daemons' thread pools for ``use_threads``/``num_submit_workers``, or none."""
    if not workers:
        yield None, None
        return
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench_tick") as ticks,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench_submit") as submit,
    ):
        yield ticks, submit


def _finish(futures: Mapping[str, Future[Any]]) -> None:
    """With threads the daemon only starts a tick: wait for it as the next iteration would."""
    for future in futures.values():
        future.result(timeout=QUERY_TIMEOUT_S * 10)


# --- 2. the schedule -----------------------------------------------------------------------


def _check_schedule_requests(
    report: Report, requests: Sequence[RunRequest], layout: Layout, worlds: Sequence[str], how: str
) -> None:
    expected = {f"{layout.last_day.isoformat()}|{world}": world for world in worlds}
    keys = [str(request.partition_key) for request in requests]
    report.expect(len(keys) == len(worlds), f"{how}: {len(keys)} run requests, not {len(worlds)}")
    report.expect(set(keys) == set(expected), f"{how}: wrong partition keys (e.g. {keys[:2]})")
    wrong_tags = [
        str(r.partition_key)
        for r in requests
        if r.tags.get("generia/world") != expected.get(str(r.partition_key))
    ]
    report.expect(not wrong_tags, f"{how}: generia/world tag missing or wrong: {wrong_tags[:3]}")
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
    from dagster import (
        DagsterRunStatus,
        RunsFilter,
        build_schedule_context,
        partition_loading_context,
    )
    from dagster._core.definitions.timestamp import TimestampWithTimezone
    from dagster._core.scheduler.instigation import TickStatus
    from dagster._core.test_utils import freeze_time
    from dagster._scheduler.scheduler import launch_scheduled_runs

    from generia_pipelines.definitions import defs

    n = len(worlds)
    schedule = defs.resolve_schedule_def(SCHEDULE)

    def in_process() -> list[RunRequest]:
        # As the code server evaluates a tick: the instance is the dynamic partitions store.
        with partition_loading_context(effective_dt=layout.tick, dynamic_partitions_store=instance):
            tick_context = build_schedule_context(
                instance=instance, scheduled_execution_time=layout.tick
            )
            return list(schedule.evaluate_tick(tick_context).run_requests or [])

    reps = settings.reps
    with profiled(settings.profile, "schedule_in_process"):
        first, median, requests = repeated(in_process, reps)
    report.add(Figure("schedule", "evaluate_tick in process", median, first, reps, len(requests)))
    _check_schedule_requests(report, requests, layout, worlds, "in-process schedule")

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

    first, median, requests = repeated(via_code_server, reps)
    report.add(Figure("schedule", "evaluation via code server (gRPC)", median, first, reps, n))
    _check_schedule_requests(report, requests, layout, worlds, "code-server schedule")

    # Turned on a minute before the tick, then the daemon's iteration a second after it.
    with freeze_time(layout.tick - timedelta(minutes=1)):
        instance.start_schedule(remote)
    started = time.time()

    def daemon_tick() -> list[Any]:
        futures: dict[str, Future[Any]] = {}
        with daemon_pools(settings.submit_workers) as (ticks, submit):
            yielded = list(
                launch_scheduled_runs(
                    context,
                    _daemon_logger(layout),
                    end_datetime_utc=layout.tick + timedelta(seconds=1),
                    iteration_times={},
                    threadpool_executor=ticks,
                    submit_threadpool_executor=submit,
                    scheduler_run_futures=futures,
                )
            )
            _finish(futures)
        return yielded

    with profiled(settings.profile, "schedule_daemon_tick"):
        seconds, yielded = clock(daemon_tick)
    errors = _errors(yielded)
    report.expect(not errors, f"scheduler daemon errors: {errors[:1]}")
    ticks = instance.get_ticks(remote.get_remote_origin_id(), remote.selector_id, limit=1)
    if not report.expect(bool(ticks), "the scheduler daemon recorded no tick"):
        return
    tick = ticks[0]
    recorded = (tick.end_timestamp or started) - started
    report.add(
        Figure(
            "schedule",
            "daemon tick: evaluate + create & queue runs",
            seconds,
            count=len(tick.run_ids),
            note=f"{settings.submission}; tick record ends after {recorded:.2f} s",
        )
    )
    report.expect(tick.status == TickStatus.SUCCESS, f"schedule tick status {tick.status}")
    report.expect(len(tick.run_ids) == n, f"schedule tick: {len(tick.run_ids)} runs, not {n}")
    queued = instance.get_runs(
        RunsFilter(
            tags={"dagster/schedule_name": SCHEDULE},
            statuses=[DagsterRunStatus.QUEUED],
        )
    )
    report.expect(len(queued) == n, f"schedule tick: {len(queued)} queued runs, not {n}")
    wrong = [
        run.run_id
        for run in queued
        if run.tags.get("generia/world") != str(run.tags.get("dagster/partition/world"))
        or run.tags.get("dagster/partition/date") != layout.last_day.isoformat()
    ]
    report.expect(not wrong, f"queued runs with wrong tags: {wrong[:3]}")


# --- 3. the UI's partition queries ---------------------------------------------------------

# The queries the Dagster UI (dagster-webserver 1.13's bundle) sends, found by name in
# dagster_webserver/webapp/build; fragments inlined, fields kept.
PYTHON_ERROR = """
fragment PythonErrorFragment on PythonError {
  message stack errorChain { isExplicitLink error { message stack } }
}"""

# Asset graph: each node's live data; partitionStats is the partition bar of a node.
ASSET_GRAPH_LIVE = """
query AssetGraphLiveQuery($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys, loadMaterializations: true) {
    id opNames repository { id } assetKey { path }
    assetMaterializations(limit: 1) { timestamp runId stepKey }
    assetObservations(limit: 1) { timestamp runId stepKey }
    assetChecksOrError { ... on AssetChecks { checks {
      name canExecuteIndividually
      executionForLatestMaterialization {
        id runId status timestamp stepKey evaluation { severity }
      }
      partitionDefinition { name description }
    } } }
    partitionStats { numMaterialized numMaterializing numPartitions numFailed }
  }
  assetsLatestInfo(assetKeys: $assetKeys) {
    id assetKey { path } unstartedRunIds inProgressRunIds
    latestRun { id status startTime endTime }
  }
}"""

# Asset page and asset graph sidebar: the partition health bar and the partition list.
PARTITION_HEALTH = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        ... on TimePartitionStatuses {
          ranges { status startTime endTime startKey endKey }
        }
        ... on DefaultPartitionStatuses {
          materializedPartitions materializingPartitions failedPartitions
        }
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey primaryDimStartTime primaryDimEndTime
            secondaryDim {
              ... on TimePartitionStatuses {
                ranges { status startTime endTime startKey endKey }
              }
              ... on DefaultPartitionStatuses {
                materializedPartitions materializingPartitions failedPartitions
              }
            }
          }
        }
      }
    }
  }
}"""

# Job page, Partitions tab: every partition with its last run's status.
PARTITIONS_STATUS = (
    """
query PartitionsStatusQuery(
  $partitionSetName: String!, $repositorySelector: RepositorySelector!
) {
  partitionSetOrError(
    repositorySelector: $repositorySelector, partitionSetName: $partitionSetName
  ) {
    ... on PartitionSet {
      id name pipelineName
      partitionsOrError {
        ... on Partitions { results { name } }
        ...PythonErrorFragment
      }
      partitionStatusesOrError {
        ... on PartitionStatuses {
          results { id partitionName runStatus runDuration }
        }
        ...PythonErrorFragment
      }
      hasLaunchBackfillPermission
    }
    ... on PartitionSetNotFoundError { message }
    ...PythonErrorFragment
  }
}"""
    + PYTHON_ERROR
)

# Launchpad of an asset job: the partition picker's keys.
CONFIG_PARTITIONS = (
    """
query ConfigPartitionsAssetsQuery($params: PipelineSelector!, $assetKeys: [AssetKeyInput!]) {
  pipelineOrError(params: $params) {
    ...PythonErrorFragment
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on Pipeline {
      id
      partitionKeysOrError(selectedAssetKeys: $assetKeys) {
        ... on PartitionKeys { partitionKeys }
      }
    }
  }
  assetNodes(assetKeys: $assetKeys) { id partitionDefinition { name type } }
}"""
    + PYTHON_ERROR
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def webserver(layout: Layout) -> Iterator[tuple[str, float]]:
    """A dagster-webserver on a free port and the seconds until its code location loaded."""
    port = _free_port()
    log = (layout.root / "webserver.log").open("w")
    command = [
        sys.executable, "-m", "dagster_webserver",
        "-h", "127.0.0.1", "-p", str(port), "-w", str(layout.workspace_file),
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        _wait_for_location(proc, url, started + WEBSERVER_START_S, layout)
        yield url, time.perf_counter() - started
    finally:
        _stop(proc)
        log.close()


def _wait_for_location(
    proc: subprocess.Popen[bytes], url: str, deadline: float, layout: Layout
) -> None:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited ({proc.returncode}); see webserver.log")
        if time.perf_counter() > deadline:
            tail = (layout.root / "webserver.log").read_text()[-2000:]
            raise RuntimeError(f"dagster-webserver not ready in {WEBSERVER_START_S:.0f} s:\n{tail}")
        with contextlib.suppress(httpx.HTTPError, ValueError):
            body = httpx.post(url, json={"query": query}, timeout=5).json()
            entries = body["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                return
        time.sleep(0.25)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the webserver (it stops its code server), then kill its process group."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _error_messages(value: Any) -> list[str]:
    """GraphQL errors hide in typed results: anything carrying a ``message`` is one."""
    if isinstance(value, dict):
        found = [str(value["message"])[:300]] if "message" in value else []
        return found + [m for item in value.values() for m in _error_messages(item)]
    if isinstance(value, list):
        return [m for item in value for m in _error_messages(item)]
    return []


def _graphql(client: httpx.Client, url: str, query: str, variables: Mapping[str, Any]) -> Any:
    response = client.post(url, json={"query": query, "variables": variables})
    response.raise_for_status()
    body = response.json()
    problems = [str(e.get("message"))[:300] for e in body.get("errors") or []]
    problems += _error_messages(body.get("data"))
    if problems:
        raise RuntimeError("; ".join(problems))
    return body["data"]


def _days_between(start: str, end: str) -> int:
    return (date.fromisoformat(end) - date.fromisoformat(start)).days + 1


def _materialized_world_days(statuses: Mapping[str, Any]) -> int:
    """Materialized partitions of a date × world status: days of a range × worlds in it."""
    total = 0
    for span in statuses.get("ranges") or []:
        worlds = span["secondaryDim"].get("materializedPartitions") or []
        total += _days_between(span["primaryDimStartKey"], span["primaryDimEndKey"]) * len(worlds)
    return total


@dataclass(frozen=True)
class UiQuery:
    """One UI query to time and how to tell that its answer is right."""

    measure: str
    query: str
    variables: Mapping[str, Any]
    check: Callable[[Any], str | None]  # None when right, else what is wrong
    count: int


def ui_queries(layout: Layout, worlds: int) -> list[UiQuery]:
    days = len(layout.days)
    world_days = worlds * days
    made = worlds * len(layout.past_days)  # the tick's day is queued, not made
    repo = {"repositoryName": REPOSITORY, "repositoryLocationName": LOCATION}
    assets = [*SETUP_ASSETS, *DAILY_ASSETS]

    def graph(data: Any) -> str | None:
        stats = {tuple(n["assetKey"]["path"]): n["partitionStats"] for n in data["assetNodes"]}
        posts = stats.get(("posts",)) or {}
        avatars = stats.get(("character_avatars",)) or {}
        if (posts.get("numPartitions"), posts.get("numMaterialized")) != (world_days, made):
            return f"posts partitionStats {posts}, expected {made} of {world_days} materialized"
        if avatars.get("numMaterialized") != worlds:
            return f"character_avatars partitionStats {avatars}"
        return None

    def health_posts(data: Any) -> str | None:
        node = data["assetNodeOrError"]
        dims = {d["name"]: len(d["partitionKeys"]) for d in node["partitionKeysByDimension"]}
        if dims != {"date": days, "world": worlds}:
            return f"posts dimensions {dims}"
        done = _materialized_world_days(node["assetPartitionStatuses"])
        return None if done == made else f"posts: {done} materialized, not {made}"

    def health_avatars(data: Any) -> str | None:
        statuses = data["assetNodeOrError"]["assetPartitionStatuses"]
        done = len(statuses.get("materializedPartitions") or [])
        return None if done == worlds else f"character_avatars: {done} materialized"

    def partition_set(data: Any) -> str | None:
        found = data["partitionSetOrError"]
        names = len(found["partitionsOrError"]["results"])
        statuses = found["partitionStatusesOrError"]["results"]
        succeeded = sum(1 for s in statuses if s["runStatus"] == "SUCCESS")
        if names != world_days or len(statuses) != world_days:
            return f"daily_posts partition set: {names} partitions, {len(statuses)} statuses"
        # The latest day's runs are queued by the schedule tick, the others succeeded.
        return None if succeeded == made else f"{succeeded} SUCCESS statuses, not {made}"

    def keys(expected: int) -> Callable[[Any], str | None]:
        def check(data: Any) -> str | None:
            found = len(data["pipelineOrError"]["partitionKeysOrError"]["partitionKeys"])
            return None if found == expected else f"{found} partition keys, not {expected}"

        return check

    return [
        UiQuery(
            "asset graph live data: partitionStats, 6 assets",
            ASSET_GRAPH_LIVE,
            {"assetKeys": [{"path": [a]} for a in assets]},
            graph,
            world_days,
        ),
        UiQuery(
            "posts partition health (date × world)",
            PARTITION_HEALTH,
            {"assetKey": {"path": ["posts"]}},
            health_posts,
            world_days,
        ),
        UiQuery(
            "character_avatars partition health (worlds)",
            PARTITION_HEALTH,
            {"assetKey": {"path": ["character_avatars"]}},
            health_avatars,
            worlds,
        ),
        UiQuery(
            "daily_posts job: partition set statuses",
            PARTITIONS_STATUS,
            {"partitionSetName": "daily_posts_partition_set", "repositorySelector": repo},
            partition_set,
            world_days,
        ),
        UiQuery(
            "populate_world launchpad: dynamic world keys",
            CONFIG_PARTITIONS,
            {
                "params": {"pipelineName": "populate_world", **repo},
                "assetKeys": [{"path": [a]} for a in SETUP_ASSETS],
            },
            keys(worlds),
            worlds,
        ),
        UiQuery(
            "daily_posts launchpad: world × date keys",
            CONFIG_PARTITIONS,
            {
                "params": {"pipelineName": "daily_posts", **repo},
                "assetKeys": [{"path": [a]} for a in DAILY_ASSETS],
            },
            keys(world_days),
            world_days,
        ),
    ]


def bench_ui(report: Report, layout: Layout, worlds: int, reps: int) -> None:
    with webserver(layout) as (url, ready_s):
        report.add(Figure("ui", "dagster-webserver ready (location loaded)", ready_s))
        with httpx.Client(timeout=QUERY_TIMEOUT_S) as client:
            for item in ui_queries(layout, worlds):

                def call(item: UiQuery = item) -> Any:
                    return _graphql(client, url, item.query, item.variables)

                try:
                    first, median, data = repeated(call, reps)
                except (RuntimeError, httpx.HTTPError) as exc:
                    report.expect(False, f"UI query {item.measure}: {exc}")
                    continue
                report.add(Figure("ui", item.measure, median, first, reps, item.count))
                wrong = item.check(data)
                report.expect(wrong is None, f"UI query {item.measure}: {wrong}")


# --- 4. the sensor -------------------------------------------------------------------------


@dataclass(frozen=True)
class SensorCase:
    """A catalog state and what the sensor must answer."""

    label: str
    worlds: Sequence[str]
    backfill_days: int
    populate: int  # populate_world requests expected
    daily: int  # daily_posts requests expected
    new_partitions: int


def _check_sensor_result(
    report: Report, case: SensorCase, result: SensorExecutionData, how: str
) -> None:
    """Counts, unique run keys, and the tags the run queue's per-world limit needs."""
    requests = list(result.run_requests or [])
    jobs = [request.job_name for request in requests]
    populate, daily = jobs.count("populate_world"), jobs.count("daily_posts")
    report.expect(
        (populate, daily) == (case.populate, case.daily),
        f"{how} {case.label}: {populate} populate_world + {daily} daily_posts requests, "
        f"not {case.populate} + {case.daily}",
    )
    keys = [request.run_key for request in requests]
    report.expect(len(set(keys)) == len(keys), f"{how} {case.label}: repeated run keys")
    untagged = [
        str(r.partition_key)
        for r in requests
        if r.tags.get("dagster/partition") != str(r.partition_key)
        or r.tags.get("generia/world") != str(r.partition_key).rpartition("|")[2]
    ]
    report.expect(not untagged, f"{how} {case.label}: partition tags missing: {untagged[:3]}")
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
) -> None:
    from dagster import build_sensor_context
    from dagster._core.scheduler.instigation import InstigatorStatus, TickStatus
    from dagster._daemon.sensor import execute_sensor_iteration

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
    _check_sensor_result(report, case, result, "in-process sensor")

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
    _check_sensor_result(report, case, data, "code-server sensor")

    state = instance.get_instigator_state(remote.get_remote_origin_id(), remote.selector_id)
    if state is None or state.status != InstigatorStatus.RUNNING:
        instance.start_sensor(remote)
    origin_id, selector_id = remote.get_remote_origin_id(), remote.selector_id

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

    for number in range(1, daemon_ticks + 1):
        runs_before = instance.get_runs_count()
        _age_sensor_state(instance, remote)
        with profiled(settings.profile, f"sensor_{slug}_daemon_tick{number}"):
            seconds, yielded = clock(daemon_tick)
        errors = _errors(yielded)
        report.expect(not errors, f"sensor daemon {case.label}: {errors[:1]}")
        tick = next(iter(instance.get_ticks(origin_id, selector_id, limit=1)), None)
        if not report.expect(tick is not None, f"sensor daemon {case.label}: no tick"):
            return
        assert tick is not None
        created = instance.get_runs_count() - runs_before
        expected = (case.populate + case.daily) if number == 1 else 0
        recorded = (tick.end_timestamp or tick.timestamp) - tick.timestamp
        what = "daemon tick" if daemon_ticks == 1 else f"daemon tick {number}"
        report.add(
            Figure(
                "sensor",
                f"{case.label}: {what}",
                seconds,
                count=created,
                note=f"{settings.submission}; tick record {recorded:.2f} s, {tick.status.value}",
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

    steady = SensorCase("(a) steady, all worlds known", worlds, 0, 0, 0, 0)
    attempt(
        steady,
        lambda: bench_sensor_case(instance, report, layout, steady, context, settings),
    )

    ready = len(instance.get_materialized_partitions(AssetKey("character_avatars")))
    report.expect(ready == n, f"{ready} worlds with avatars, not {n}")
    # Only days that are partitions can be requested: all of them when there are fewer.
    days = min(SENSOR_BACKFILL_DAYS, len(layout.days))
    backfill = SensorCase(
        f"(c) backfill {SENSOR_BACKFILL_DAYS} days", worlds, SENSOR_BACKFILL_DAYS, 0, days * n, 0
    )

    def backfill_case() -> None:
        with daemon_workspace(instance, layout, SENSOR_BACKFILL_DAYS) as backfill_context:
            bench_sensor_case(instance, report, layout, backfill, backfill_context, settings, 2)

    attempt(backfill, backfill_case)

    new = world_ids("bench-new", n)
    fresh = SensorCase(f"(b) {n} new worlds", new, 0, n, 0, n)

    def fresh_case() -> None:
        bench_sensor_case(instance, report, layout, fresh, context, settings)
        known = set(instance.get_dynamic_partitions("worlds"))
        report.expect(set(new) <= known, "the sensor daemon did not add the new worlds")

    attempt(fresh, fresh_case)


# --- main ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--reps", type=int, default=5, help="warm repetitions per figure")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="10 worlds × 5 days (fewer than the 7 backfill days), 1 rep",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the database and files")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here")
    parser.add_argument(
        "--submit-workers",
        type=int,
        default=0,
        help="run the daemons with threads and this many submit workers (default: serial)",
    )
    parser.add_argument("--skip-ui", action="store_true", help="no webserver")
    parser.add_argument("--skip-sensor", action="store_true")
    opts = parser.parse_args()
    if opts.smoke:
        opts.worlds, opts.days, opts.reps = 10, 5, 1
    if opts.worlds < 1 or opts.days < 2 or opts.reps < 1:
        parser.error("--worlds ≥ 1, --days ≥ 2 and --reps ≥ 1")

    # A plain SIGTERM would skip the finally blocks: the database and the webserver.
    signal.signal(signal.SIGTERM, _terminate)
    report = Report()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="generia-bench-scale-"))
    try:
        with fresh_database(opts.keep) as (user, database):
            layout = prepare(tmp, user, database, opts.days)
            print(
                f"{opts.worlds} worlds × {opts.days} days, tick {layout.tick.isoformat()}, "
                f"database {database}, files {tmp}",
                flush=True,
            )
            run(opts, report, layout)
    except Exception as exc:  # reported, then a non-zero exit
        logging.getLogger(__name__).exception("benchmark failed")
        report.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        if not opts.keep:
            _remove_tree(tmp)
    total = time.perf_counter() - began

    print()
    print(report.table())
    print(f"\ntotal {total:.1f} s; {len(report.problems)} problem(s)")
    for problem in report.problems:
        print(f"- {problem}")
    if opts.json:
        opts.json.write_text(
            json.dumps(
                {
                    "worlds": opts.worlds,
                    "days": opts.days,
                    "reps": opts.reps,
                    "smoke": opts.smoke,
                    "submit_workers": opts.submit_workers,
                    "started": started,
                    "total_seconds": round(total, 3),
                    "figures": [asdict(figure) for figure in report.figures],
                    "problems": report.problems,
                },
                indent=2,
            )
        )
    return 1 if report.problems else 0


def run(opts: argparse.Namespace, report: Report, layout: Layout) -> None:
    from dagster import DagsterInstance

    worlds = world_ids("bench-world", opts.worlds)
    write_worlds(layout.worlds_file, worlds)
    settings = Settings(opts.reps, opts.profile, opts.submit_workers)
    import generia_pipelines

    source = Path(generia_pipelines.__file__).resolve()
    if not source.is_relative_to(layout.root.resolve()):
        raise RuntimeError(f"generia_pipelines imported from {source}, not the snapshot")
    with DagsterInstance.get() as instance:
        print("setup", flush=True)
        bench_setup(instance, report, layout, worlds)
        with daemon_workspace(instance, layout, 0) as context:
            print("schedule", flush=True)
            bench_schedule(instance, report, layout, worlds, context, settings)
            if not opts.skip_ui:
                print("ui", flush=True)
                bench_ui(report, layout, len(worlds), opts.reps)
            if not opts.skip_sensor:
                print("sensor", flush=True)
                bench_sensor(instance, report, layout, worlds, context, settings)


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
