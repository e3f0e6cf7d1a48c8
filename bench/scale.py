"""Dagster automation and the UI's partition queries at 1,000 worlds × 90 days on PostgreSQL.

Run: .venv/bin/python bench/scale.py [--worlds 1000] [--days 90] [--json PATH] [--keep]
     .venv/bin/python bench/scale.py --smoke   # 10 worlds × 5 days: a correctness check for CI

A fresh PostgreSQL database per run (dropped at the end unless ``--keep``) behind a
DAGSTER_HOME whose dagster.yaml is deploy/dagster.yaml with literal connection values; the
catalog is a generated worlds file; the package is copied first, so every process of the
run loads the same code. The tick is today's 06:00 UTC and the date partitions end
yesterday: exactly ``--days`` of them. Runs take K partitions (GENERIA_PARTITIONS_PER_RUN,
default 50). Measured, in order (one module each):

1. setup (``scale_history``): the worlds' dynamic partitions, then the history the UI shows:
   one daily_posts run per world and day with its three materializations, one
   populate_world run per world with its three, as before runs were batched (the larger
   run table); written in bulk (not a target).
2. the daily_posts_schedule tick (``scale_schedule``): evaluated in process, through the
   code server (gRPC), and the scheduler daemon's whole tick (``launch_scheduled_runs`` at a
   simulated 06:00: evaluation, then creating and queueing ceil(worlds / K) range runs),
   once without and once with DAGSTER_EVENT_BATCH_SIZE.
3. the GraphQL queries the UI sends for partitions, over HTTP to a real dagster-webserver
   (``scale_ui``).
4. new_worlds_sensor ticks (``scale_sensor``), in process, through the code server and
   through the sensor daemon (``execute_sensor_iteration``): steady state,
   GENERIA_BACKFILL_DAYS=7 with every world set up, and a catalog of only new worlds with
   a 7-day backfill, tick after tick until nothing is left.

Figures are seconds: the first (cold) call and the median of ``--reps`` more. The daemons
submit runs one after the other, as deploy/dagster.yaml configures them; ``--submit-workers
N`` measures them with ``use_threads`` and N submit threads instead. The exit status is 1
when a result is wrong (request or run counts, coverage, tags, a tick's status, a GraphQL
error); no duration is asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_daemon import daemon_workspace
from scale_env import Layout, Report, Settings, fresh_database, prepare, world_ids, write_worlds
from scale_history import bench_setup
from scale_schedule import bench_schedule
from scale_sensor import bench_sensor
from scale_ui import bench_ui


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
    parser.add_argument(
        "--event-batch",
        type=int,
        default=100,
        help="DAGSTER_EVENT_BATCH_SIZE in the daemon for the sensor ticks and the second "
        "schedule tick (0: unset; default 100)",
    )
    parser.add_argument(
        "--per-run",
        type=int,
        default=None,
        help="GENERIA_PARTITIONS_PER_RUN, K (default: the environment's, else 50; smoke: 4)",
    )
    parser.add_argument("--skip-ui", action="store_true", help="no webserver")
    parser.add_argument("--skip-sensor", action="store_true")
    opts = parser.parse_args()
    if opts.smoke:
        opts.worlds, opts.days, opts.reps = 10, 5, 1
        # several ranges per request, a rectangle of days split in two, single-world ranges
        opts.per_run = opts.per_run or 4
    if opts.per_run:
        os.environ["GENERIA_PARTITIONS_PER_RUN"] = str(opts.per_run)
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
                    "event_batch": opts.event_batch,
                    "partitions_per_run": _partitions_per_run(),
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
    settings = Settings(opts.reps, opts.profile, opts.submit_workers, opts.event_batch)
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


def _partitions_per_run() -> int | None:
    try:
        from generia_pipelines.assets.batch import partitions_per_run
    except ImportError:  # the run failed before the snapshot was importable
        return None
    return partitions_per_run()


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
