"""Run workers for the benchmark: K processes that execute Dagster runs, like a run queue.

Each worker is a spawned process that imports the code location once, opens the shared
Dagster instance (PostgreSQL) and then executes the runs it is handed with the jobs'
in-process executor, one after another: a world's runs go to one worker in order, so a
world never has two runs at once (the deployment's ``generia/world`` tag limit), and at most
K runs are in flight (its ``max_concurrent_runs``). Per run it reports wall time, the
process's CPU seconds and the time from launch to the first step's start.
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
    job: str
    partition: str


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
        partition_key=spec.partition,
        raise_on_error=False,
    )
    if profiler is not None:
        profiler.disable()
        name = f"{spec.job}-{spec.partition.replace('|', '_')}-{result.run_id[:8]}.prof"
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
        spec.partition,
        result.success,
        wall,
        cpu,
        first_at - launched,
        first_at,
        error,
        steps,
    )


def _worker(index: int, env: Mapping[str, str], inbox: Any, outbox: Any) -> None:
    os.environ.update(env)
    from dagster import DagsterInstance

    from generia_pipelines.definitions import defs

    instance = DagsterInstance.get()
    jobs = {name: defs.resolve_job_def(name) for name in ("populate_world", "daily_posts")}
    outbox.put(("ready", index, None))
    while (task := inbox.get()) is not None:
        task_id, runs, run_config = task
        done: list[RunStats] = []
        for spec in runs:
            try:
                stats = execute_run(instance, jobs[spec.job], spec, run_config)
            except Exception as exc:  # a harness error must come back, not hang the pool
                stats = RunStats(spec.job, spec.partition, False, 0.0, 0.0, 0.0, error=repr(exc))
            done.append(stats)
            if not stats.success:
                break  # a world's later runs need its earlier ones
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
            inbox.put((i, list(make(i)), dict(run_config)))
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
    ) -> tuple[float, list[list[RunStats]]]:
        """Run every task, first in first out, at most one per worker; wall time and stats."""
        pending = deque(enumerate(list(tasks)))
        count = len(pending)
        results: dict[int, list[RunStats]] = {}
        idle = list(range(self.size))
        start = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        while len(results) < count:
            while idle and pending:
                task_id, runs = pending.popleft()
                self._inboxes[idle.pop()].put((task_id, list(runs), dict(run_config)))
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
