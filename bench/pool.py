"""Run workers for the benchmark: K processes that execute Dagster runs, like a run queue.

Each worker is a spawned process that imports the code location once, opens the shared
Dagster instance (PostgreSQL) and then executes the runs it is handed with the jobs'
in-process executor, one after another: a task's runs (a world's, or a range of worlds')
go to one worker in order, so a world's posts follow its setup, and at most K runs are in
flight (the deployment's ``max_concurrent_runs``). A run is one partition
(``partition_key``) or a range of them (the ``dagster/asset_partition_range_start`` /
``_end`` tags a schedule's or sensor's range request carries, and no partition key). Per
run it reports wall time, the process's CPU seconds and the time from launch to the first
step's start.

A task may set environment variables for its runs (e.g. ``DAGSTER_EVENT_BATCH_SIZE``, which
Dagster reads at every event) and may run on a second instance of the worker whose storage
keeps its PostgreSQL connections in a pool (``pooled``), as the webserver's does, instead of
opening one per query (dagster-postgres's ``NullPool`` in run workers).
"""

from __future__ import annotations

import cProfile
import multiprocessing as mp
import os
import queue
import resource
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Set to a directory to write a CPU profile of every run there (``--profile``).
PROFILE_VAR = "GENERIA_BENCH_PROFILE"
#: How long a worker may take to import, connect and report ready.
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RunSpec:
    """A run of ``job``: one partition, or the range ``partition`` .. ``last`` when ``last``
    is set (for world × date keys a rectangle of worlds × days)."""

    job: str
    partition: str
    last: str = ""
    #: Partitions the run covers (for the report; 1 for a one-partition run).
    partitions: int = 1

    @property
    def is_range(self) -> bool:
        return bool(self.last) and self.last != self.partition

    @property
    def label(self) -> str:
        return f"{self.partition}..{self.last}" if self.is_range else self.partition

    def tags(self) -> dict[str, str]:
        """The range tags of a range run (Dagster's own names), none for one partition."""
        if not self.is_range:
            return {}
        return {
            "dagster/asset_partition_range_start": self.partition,
            "dagster/asset_partition_range_end": self.last,
        }


@dataclass(frozen=True)
class TaskOptions:
    """How a task's runs execute: extra environment variables, the pooled instance."""

    env: tuple[tuple[str, str], ...] = ()
    pooled: bool = False


@dataclass(frozen=True)
class RunStats:
    job: str
    partition: str
    success: bool
    wall_s: float
    cpu_s: float
    first_step_s: float
    #: Wall-clock time (epoch seconds) of the first step's start.
    first_step_at: float = 0.0
    error: str = ""
    #: Seconds from each step's start to its end (success or failure).
    steps: tuple[tuple[str, float], ...] = ()
    partitions: int = 1
    #: Events the run stored (all kinds), to compare the event volume of the modes.
    events: int = 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def execute_run(instance: Any, job: Any, spec: RunSpec, run_config: Mapping[str, Any]) -> RunStats:
    """Execute one run in this process and measure it."""
    from dagster import DagsterEventType

    profile_dir = os.environ.get(PROFILE_VAR)
    profiler = cProfile.Profile(time.process_time) if profile_dir else None
    launched, cpu0, wall0 = time.time(), _cpu(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = job.execute_in_process(
        run_config=dict(run_config),
        instance=instance,
        partition_key=None if spec.is_range else spec.partition,
        tags=spec.tags() or None,
        raise_on_error=False,
    )
    if profiler is not None:
        profiler.disable()
        label = spec.label.replace("|", "_").replace(".", "_")[:80]
        name = f"{spec.job}-{label}-{result.run_id[:8]}.prof"
        profiler.dump_stats(os.path.join(str(profile_dir), name))
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    records = instance.all_logs(
        result.run_id,
        of_type={
            DagsterEventType.STEP_START,
            DagsterEventType.STEP_SUCCESS,
            DagsterEventType.STEP_FAILURE,
        },
    )
    began = {
        r.step_key: r.timestamp
        for r in records
        if r.dagster_event_type == DagsterEventType.STEP_START
    }
    ended = {
        r.step_key: r.timestamp
        for r in records
        if r.dagster_event_type != DagsterEventType.STEP_START
    }
    events = stored_events(instance, result.run_id)
    first_at = min(began.values(), default=launched)
    steps = tuple(
        (key, ended[key] - began[key])
        for key in sorted(began, key=began.__getitem__)
        if key in ended
    )
    error = ""
    if not result.success:
        failures = [
            event.event_specific_data.error.message.strip().splitlines()[0]
            for event in result.all_events
            if event.event_type == DagsterEventType.STEP_FAILURE
            and event.event_specific_data is not None
            and getattr(event.event_specific_data, "error", None) is not None
        ]
        error = "; ".join(failures[:3]) or "run failed"
    return RunStats(
        spec.job,
        spec.label,
        result.success,
        wall,
        cpu,
        first_at - launched,
        first_at,
        error,
        steps,
        spec.partitions,
        events,
    )


def stored_events(instance: Any, run_id: str) -> int:
    """How many events the run stored, counted in the database (not read back)."""
    import sqlalchemy as db
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable as Events

    storage = instance.event_log_storage
    with storage.run_connection(run_id) as conn:
        query = db.select(db.func.count()).select_from(Events).where(Events.c.run_id == run_id)
        return int(conn.execute(query).scalar() or 0)


def _exit_with_parent() -> None:
    """End this worker when the harness is gone (killed before it could close the pool):
    a worker in the middle of a run would otherwise go on alone, for minutes."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _worker(index: int, env: Mapping[str, str], inbox: Any, outbox: Any) -> None:
    _exit_with_parent()
    os.environ.update(env)
    from dagster import DagsterInstance

    from generia_pipelines.definitions import defs

    instance = DagsterInstance.get()
    pooled: Any = None  # made on first use: a second instance whose storage pools connections
    jobs = {name: defs.resolve_job_def(name) for name in ("populate_world", "daily_posts")}
    outbox.put(("ready", index, None))
    while (task := inbox.get()) is not None:
        task_id, runs, run_config, options = task
        saved = {name: os.environ.get(name) for name, _ in options.env}
        os.environ.update(dict(options.env))
        if options.pooled and pooled is None:
            pooled = DagsterInstance.get()
            # as generia_pipelines.pooled_storage configures its storages: no statement
            # timeout, one connection kept, four more on demand, recycled hourly
            pooled.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
        target = pooled if options.pooled else instance
        done: list[RunStats] = []
        try:
            for spec in runs:
                try:
                    stats = execute_run(target, jobs[spec.job], spec, run_config)
                except Exception as exc:  # a harness error must come back, not hang the pool
                    stats = RunStats(spec.job, spec.label, False, 0.0, 0.0, 0.0, error=repr(exc))
                done.append(stats)
                if not stats.success:
                    break  # a world's later runs need its earlier ones
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        outbox.put(("done", index, (task_id, done)))


class RunPool:
    """K worker processes; ``run(tasks)`` hands each task (a world's runs) to a free one."""

    def __init__(self, workers: int, env: Mapping[str, str]) -> None:
        context = mp.get_context("spawn")
        self._outbox = context.Queue()
        self._inboxes = [context.Queue() for _ in range(workers)]
        self._procs = [
            context.Process(
                target=_worker, args=(i, dict(env), self._inboxes[i], self._outbox), daemon=True
            )
            for i in range(workers)
        ]
        for proc in self._procs:
            proc.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        for _ in self._procs:
            self._next(deadline, "start")

    @property
    def size(self) -> int:
        return len(self._procs)

    @property
    def pids(self) -> list[int]:
        """The workers' process ids, for CPU accounting from outside."""
        return [int(proc.pid) for proc in self._procs if proc.pid is not None]

    def _next(self, deadline: float, what: str) -> tuple[str, int, Any]:
        while True:
            try:
                message: tuple[str, int, Any] = self._outbox.get(timeout=1.0)
                return message
            except queue.Empty:
                dead = [i for i, proc in enumerate(self._procs) if not proc.is_alive()]
                if dead:
                    raise RuntimeError(f"run workers {dead} died during {what}") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"run workers did not finish {what} in time") from None

    def each_worker(
        self, make: Any, run_config: Mapping[str, Any], timeout_s: float
    ) -> list[list[RunStats]]:
        """Give worker i the runs ``make(i)`` (to warm every worker up the same way)."""
        for i, inbox in enumerate(self._inboxes):
            inbox.put((i, list(make(i)), dict(run_config), TaskOptions()))
        deadline = time.monotonic() + timeout_s
        results: dict[int, list[RunStats]] = {}
        while len(results) < self.size:
            _, _, (task_id, stats) = self._next(deadline, "warm-up")
            results[task_id] = stats
        return [results[i] for i in range(self.size)]

    def run(
        self,
        tasks: Iterable[Sequence[RunSpec]],
        run_config: Mapping[str, Any],
        timeout_s: float,
        options: TaskOptions | None = None,
        slots: int | None = None,
    ) -> tuple[float, list[list[RunStats]]]:
        """Run every task, first in first out, at most one per worker (and at most ``slots``
        at once, default every worker); wall time and stats."""
        pending = deque(enumerate(list(tasks)))
        count = len(pending)
        results: dict[int, list[RunStats]] = {}
        idle = list(range(min(self.size, slots or self.size)))
        options = options or TaskOptions()
        start = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        while len(results) < count:
            while idle and pending:
                task_id, runs = pending.popleft()
                self._inboxes[idle.pop()].put((task_id, list(runs), dict(run_config), options))
            _, worker, (task_id, stats) = self._next(deadline, f"{count} tasks")
            results[task_id] = stats
            idle.append(worker)
        return time.perf_counter() - start, [results[i] for i in range(count)]

    def close(self) -> None:
        for inbox in self._inboxes:
            inbox.put(None)
        for proc in self._procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
