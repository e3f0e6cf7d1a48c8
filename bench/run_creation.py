"""What creating one run costs the process that creates it (the daemon), per setting.

Run: .venv/bin/python bench/run_creation.py [--worlds 1000] [--per-run 50] [--runs 3]

On a fresh PostgreSQL database with ``--worlds`` world partitions and 90 days, creates
``--runs`` daily_posts range runs of ``--per-run`` world-days each (the schedule's K), the way
the daemon does (an execution plan, then ``create_run_for_job``, which stores the run and a
planned event per partition of each asset and one per check), and reports seconds, CPU and
events per run, for:

- Dagster's defaults (a new connection per statement, each event its own insert);
- ``DAGSTER_EVENT_BATCH_SIZE=100``;
- that, with the storage's connections kept in a pool (what
  ``generia_pipelines.pooled_storage`` configures);
- that, with ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1`` (one planned event per
  asset; failed partitions are then not marked FAILED: for comparison only).

The settings alternate run by run, so that a changing load on the machine falls on all alike.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness_bed import postgres_database, write_dagster_home
from pool import stored_events

VARIANTS: tuple[tuple[str, dict[str, str], bool], ...] = (
    ("Dagster defaults", {}, False),
    ("DAGSTER_EVENT_BATCH_SIZE=100", {"DAGSTER_EVENT_BATCH_SIZE": "100"}, False),
    ("batches + pooled connections", {"DAGSTER_EVENT_BATCH_SIZE": "100"}, True),
    (
        "batches + pool + one planned event per asset",
        {
            "DAGSTER_EVENT_BATCH_SIZE": "100",
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
        },
        True,
    ),
)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--worlds", type=int, default=1000)
    parser.add_argument("--per-run", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="runs per setting")
    parser.add_argument("--json", type=Path, default=None)
    opts = parser.parse_args()
    today = date.today()
    os.environ["GENERIA_POSTS_START_DATE"] = (today - timedelta(days=90)).isoformat()
    os.environ.setdefault("RUNWARE_API_KEY", "bench-placeholder")
    with tempfile.TemporaryDirectory() as tmp, postgres_database(False) as pg:
        write_dagster_home(Path(tmp), pg)
        os.environ["DAGSTER_HOME"] = tmp
        report = measure(opts.worlds, opts.per_run, opts.runs, today - timedelta(days=1))
    for row in report["variants"]:
        print(
            f"{row['variant']:<48} {row['seconds_per_run']:>7.2f} s/run  "
            f"{row['cpu_s_per_run']:>6.2f} CPU s/run  {row['events_per_run']:>5} events/run"
        )
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=2))
    return 0


def measure(worlds: int, per_run: int, runs: int, day: date) -> dict[str, Any]:
    from dagster import DagsterInstance
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from generia_pipelines.definitions import defs

    job = defs.resolve_job_def("daily_posts")
    ids = [f"w-{i:04d}" for i in range(worlds)]
    plain = DagsterInstance.get()
    pooled = DagsterInstance.get()
    pooled.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
    plain.add_dynamic_partitions("worlds", ids)
    times: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _, _ in VARIANTS}
    chunk = 0
    for _ in range(runs + 1):  # the first round warms every setting up and is not counted
        for name, env, use_pool in VARIANTS:
            instance = pooled if use_pool else plain
            start = (chunk * per_run) % max(1, worlds - per_run + 1)
            first, last = ids[start], ids[min(worlds, start + per_run) - 1]
            chunk += 1
            tags = {
                ASSET_PARTITION_RANGE_START_TAG: f"{day.isoformat()}|{first}",
                ASSET_PARTITION_RANGE_END_TAG: f"{day.isoformat()}|{last}",
            }
            saved = {key: os.environ.get(key) for key in env}
            os.environ.update(env)
            try:
                wall0, cpu0 = time.perf_counter(), _cpu()
                plan = create_execution_plan(job, tags=tags, instance_ref=instance.get_ref())
                run = instance.create_run_for_job(job, execution_plan=plan, tags=tags)
                wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
            times[name].append((wall, cpu, stored_events(plain, run.run_id)))
    rows = []
    for name, _, _ in VARIANTS:
        counted = times[name][1:]
        rows.append(
            {
                "variant": name,
                "seconds_per_run": round(statistics.median(t[0] for t in counted), 3),
                "cpu_s_per_run": round(statistics.median(t[1] for t in counted), 3),
                "events_per_run": counted[-1][2],
                "all_seconds": [round(t[0], 3) for t in counted],
            }
        )
    return {"worlds": worlds, "per_run": per_run, "runs": runs, "variants": rows}


if __name__ == "__main__":
    sys.exit(main())
