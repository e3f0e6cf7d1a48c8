"""Chaos at size: several worlds populated through Dagster while every dependency fails.

Run: .venv/bin/python bench/chaos.py [--worlds 5] [--characters 25] [--posts 50] [--days 1]
     [--rate 0.1] [--seed 7] [--ignore-idempotency] [--json figures.json] [--log clients.log]

The local stack, the Runware stand-in and the text stand-in run in this process (threads);
the faults, the retries and the audit are those of ``tests/chaos/chaos_harness.py``. Prints
each run as it ends, then the figures table; exits 1 when a property does not hold on a
platform that honours idempotency keys.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "chaos"))

from chaos_harness import ChaosConfig, run_chaos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--worlds", type=int, default=5)
    parser.add_argument("--characters", type=int, default=25)
    parser.add_argument("--posts", type=int, default=50, help="posts per world and day")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.1, help="rate of every fault kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-rounds", type=int, default=5, help="runs per partition")
    parser.add_argument("--ignore-idempotency", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--log", type=Path, default=None, help="write the clients' retry warnings to this file"
    )
    opts = parser.parse_args()
    # The clients log every retried fault; under chaos that is thousands of lines.
    logging.basicConfig(level=logging.ERROR)
    for root_handler in logging.getLogger().handlers:
        root_handler.setLevel(logging.ERROR)  # also for records of loggers set lower below
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    if opts.log is not None:
        handler = logging.FileHandler(opts.log, mode="w")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        clients = logging.getLogger("generia_pipelines.clients")
        clients.addHandler(handler)
        clients.setLevel(logging.INFO)

    config = ChaosConfig(
        worlds=opts.worlds,
        characters=opts.characters,
        posts=opts.posts,
        days=opts.days,
        rate=opts.rate,
        seed=opts.seed,
        max_rounds=opts.max_rounds,
        honour_idempotency=not opts.ignore_idempotency,
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="generia-chaos-") as tmp:
        report = run_chaos(config, Path(tmp), say=lambda line: print(line, flush=True))
    print()
    print(report.table())
    print(f"\ntotal {time.monotonic() - started:.1f} s")
    if opts.json is not None:
        opts.json.write_text(json.dumps(report.figures, indent=2, default=str))
    problems = report.violations()
    if problems and config.honour_idempotency:
        print("VIOLATED:\n  " + "\n  ".join(problems))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
