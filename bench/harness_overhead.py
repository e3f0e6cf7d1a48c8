"""The pipeline's own cost at zero latency, for ``bench/harness.py --scenarios overhead``.

- CPU per generated item: the slope between a small and a large world, in warm workers.
- A run's fixed cost: a run with nothing left to do (CPU, wall), launch to first step, warm
  and in a fresh process.
- A batched run's cost per world-day: a range run over N world-days that makes their posts,
  then the same range again with nothing left to do (its CPU over N is the run's and the
  partitions' fixed cost per world-day), and one world-day alone with nothing to do; each
  as Dagster runs by default, with ``DAGSTER_EVENT_BATCH_SIZE=100``, and with that plus
  pooled PostgreSQL connections in the run worker.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import date
from typing import TYPE_CHECKING, Any

from harness_bed import HERE, AuditError
from pool import RunSpec, RunStats, TaskOptions

if TYPE_CHECKING:
    from harness import Bench

BATCH_ENV = (("DAGSTER_EVENT_BATCH_SIZE", "100"),)
#: The batched-run variants: Dagster's defaults, event batches, event batches + a pool.
VARIANTS: tuple[tuple[str, TaskOptions], ...] = (
    ("default", TaskOptions()),
    ("DAGSTER_EVENT_BATCH_SIZE=100", TaskOptions(env=BATCH_ENV)),
    ("event batches + pooled connections", TaskOptions(env=BATCH_ENV, pooled=True)),
)
NOOP_REPEATS = 3


def overhead(bench: Bench, day: date) -> dict[str, Any]:
    from harness import day_run, setup_run

    plan = bench.plan
    sizes = {"cpu-small": plan.overhead_small, "cpu-large": plan.overhead_large}
    by_world: dict[str, list[RunStats]] = {}
    for world_id in sizes:  # one at a time: each run's CPU is its own
        _, _, stats = bench.run([[setup_run(world_id), day_run(world_id, day)]])
        by_world[world_id] = stats
    bench.made(sizes, 1, True)
    bench.audit(list(sizes))
    small, large = by_world["cpu-small"], by_world["cpu-large"]
    d_chars = 2 * (plan.overhead_large.characters - plan.overhead_small.characters)
    d_posts = plan.overhead_large.posts - plan.overhead_small.posts
    setup_slope = (large[0].cpu_s - small[0].cpu_s) / max(1, d_chars)
    post_slope = (large[1].cpu_s - small[1].cpu_s) / max(1, d_posts)
    items = d_chars + d_posts
    slope = (large[0].cpu_s + large[1].cpu_s - small[0].cpu_s - small[1].cpu_s) / max(1, items)
    # A run with nothing left to do: what every run costs before its first item.
    repeats = [bench.run([[day_run("cpu-large", day)]])[2][0] for _ in range(5)]
    median = _median_run(repeats)
    cold = cold_first_step(bench.env, day_run("cpu-large", day), bench.plan)
    return {
        "cpu_ms_per_item": round(1000 * slope, 2),
        "setup_cpu_ms_per_item": round(1000 * setup_slope, 2),
        "post_cpu_ms_per_item": round(1000 * post_slope, 2),
        "run_cpu_ms": round(1000 * median.cpu_s, 1),
        "run_wall_ms": round(1000 * median.wall_s, 1),
        "run_events": median.events,
        "first_step_warm_ms": round(1000 * median.first_step_s, 1),
        "first_step_cold_ms": round(1000 * cold, 1),
        "batched": batched_overhead(bench, day),
        "detail": {
            "runs": {w: [asdict(s) for s in stats] for w, stats in by_world.items()},
            "noop_runs": [asdict(s) for s in repeats],
        },
    }


def _median_run(runs: Sequence[RunStats]) -> RunStats:
    ordered = sorted(runs, key=lambda s: s.cpu_s)
    return ordered[len(ordered) // 2]


def batched_overhead(bench: Bench, day: date) -> list[dict[str, Any]]:
    """Per variant: a range run of N world-days with work, the same with nothing to do, and
    one world-day with nothing to do; CPU and events per world-day."""
    from harness import day_range, day_run, refresh_worlds

    plan = bench.plan
    n = plan.overhead_range
    ids = list(refresh_worlds(plan))
    if len(ids) < n * len(VARIANTS):
        raise AuditError(f"the batched overhead needs {n * len(VARIANTS)} refresh worlds")
    limits = bench.limits_for(1, n)
    rows = []
    for index, (name, options) in enumerate(VARIANTS):
        worlds = ids[index * n : (index + 1) * n]
        work_wall, work_cpu, work = bench.run([[day_range(worlds, day)]], limits, options)
        bench.made({w: plan.refresh for w in worlds}, 1, False)
        noop = [
            bench.run([[day_range(worlds, day)]], limits, options)[2][0]
            for _ in range(NOOP_REPEATS)
        ]
        single = [
            bench.run([[day_run(worlds[0], day)]], limits, options)[2][0]
            for _ in range(NOOP_REPEATS)
        ]
        noop_run, single_run = _median_run(noop), _median_run(single)
        marginal = (noop_run.cpu_s - single_run.cpu_s) / max(1, n - 1)
        rows.append(
            {
                "variant": name,
                "world_days": n,
                "posts_per_world_day": plan.refresh.posts,
                "work_run": {
                    "wall_s": round(work_wall, 2),
                    "worker_cpu_s": round(work[0].cpu_s, 2),
                    "cpu_ms_per_world_day": round(1000 * work[0].cpu_s / n, 1),
                    "events": work[0].events,
                    "cpu_s": work_cpu,
                },
                "noop_range_run": {
                    "cpu_ms": round(1000 * noop_run.cpu_s, 1),
                    "wall_ms": round(1000 * noop_run.wall_s, 1),
                    "cpu_ms_per_world_day": round(1000 * noop_run.cpu_s / n, 1),
                    "events": noop_run.events,
                    "events_per_world_day": round(noop_run.events / n, 1),
                    "all_cpu_ms": [round(1000 * s.cpu_s, 1) for s in noop],
                },
                "noop_single_run": {
                    "cpu_ms": round(1000 * single_run.cpu_s, 1),
                    "wall_ms": round(1000 * single_run.wall_s, 1),
                    "events": single_run.events,
                    "all_cpu_ms": [round(1000 * s.cpu_s, 1) for s in single],
                },
                "marginal_cpu_ms_per_world_day": round(1000 * marginal, 1),
                "median_cpu_ms_spread": round(
                    1000 * (statistics.pstdev([s.cpu_s for s in noop]) if len(noop) > 1 else 0),
                    1,
                ),
            }
        )
    bench.audit(ids[: n * len(VARIANTS)])
    return rows


def cold_first_step(env: Mapping[str, str], spec: RunSpec, plan: Any) -> float:
    """Launch to first step in a fresh process, as a run launcher's new run worker pays it."""
    from harness_bed import run_config

    config = run_config(plan.limits, plan.image_size)
    code = (
        "import json, sys, time\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from pool import RunSpec, execute_run\n"
        "from dagster import DagsterInstance\n"
        "from generia_pipelines.definitions import defs\n"
        "spec = RunSpec(sys.argv[2], sys.argv[3])\n"
        "stats = execute_run(DagsterInstance.get(), defs.resolve_job_def(spec.job), spec, "
        "json.loads(sys.argv[4]))\n"
        "print(json.dumps({'ok': stats.success, 'first_at': stats.first_step_at}))\n"
    )
    launched = time.time()
    out = subprocess.run(
        [sys.executable, "-c", code, str(HERE), spec.job, spec.partition, json.dumps(config)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    if not answer["ok"]:
        raise AuditError(f"the cold run failed: {out.stderr[-2000:]}")
    return float(answer["first_at"]) - launched


def print_overhead(o: Mapping[str, Any]) -> None:
    print(
        f"overhead at zero latency: {o['cpu_ms_per_item']:.2f} ms CPU per item "
        f"(setup {o['setup_cpu_ms_per_item']:.2f}, posts {o['post_cpu_ms_per_item']:.2f}); "
        f"a run with nothing to do: {o['run_cpu_ms']:.0f} ms CPU, {o['run_wall_ms']:.0f} ms "
        f"wall, {o['run_events']} events; launch to first step {o['first_step_warm_ms']:.0f} ms "
        f"warm, {o['first_step_cold_ms']:.0f} ms in a fresh process"
    )
    print(
        f"{'batched run variant':<38}{'N':>4}{'work ms/wd':>11}{'no-op ms/wd':>12}"
        f"{'marginal':>9}{'1-wd no-op ms':>14}{'events/wd':>10}"
    )
    for row in o.get("batched", []):
        print(
            f"{row['variant']:<38}{row['world_days']:>4}"
            f"{row['work_run']['cpu_ms_per_world_day']:>11.1f}"
            f"{row['noop_range_run']['cpu_ms_per_world_day']:>12.1f}"
            f"{row['marginal_cpu_ms_per_world_day']:>9.1f}"
            f"{row['noop_single_run']['cpu_ms']:>14.0f}"
            f"{row['noop_range_run']['events_per_world_day']:>10.1f}"
        )
