"""What claims and paid-call intents cost per unit, in the ledger alone, before and after.

The pipeline's overhead scenario (``bench/harness.py``) measures CPU per item end to end,
which two shared cores make noisy. This isolates the part the exactly-once design adds: for
each unit, the ledger writes of a post's paid steps, as the code of ``--before REV`` made
them (count the text call, correct its cost, record the text, count the image, record it)
and as this checkout makes them (take the unit's lease, reserve the text call, record the text
with its spend, reserve the image's intent, record the image with its spend). Each side
runs in its own process (the old side imports a git worktree of REV), alternately, round
after round, on SQLite and on PostgreSQL, so the machine's load falls on both alike. The
figure is the CPU of the process running the ledger (the database server's is not in it)
per unit, and its SQL statements per unit.

    .venv/bin/python bench/ledger_overhead.py --before 4de264e [--units 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("GENERIA_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(4096)
DAY = "2026-11-24"


def measure(side: str, url: str, schema: str | None, units: int) -> dict[str, float]:
    """In this process: CPU and statements per unit of one side's ledger writes."""
    import sqlalchemy as sa

    from generia_pipelines.budget import Budget
    from generia_pipelines.generation.planning import post_key
    from generia_pipelines.ledger import Ledger

    budget = Budget(images=10**9, text_calls=10**9, usd=10.0**6)
    ledger = Ledger(url, schema=schema)
    statements = {"n": 0}

    @sa.event.listens_for(ledger._base_engine, "before_cursor_execute")
    def _count(*_: Any) -> None:
        statements["n"] += 1

    world = f"{side}-{uuid.uuid4().hex[:8]}"
    if side == "before":

        def unit(slot: int) -> None:
            key = post_key(world, DAY, slot)
            ledger.spend(world, budget, period=DAY, text_calls=1, usd=0.001)
            ledger.adjust_spend(world, period=DAY, usd=-0.001)
            ledger.record_text(key, {"value": {"caption": "x"}})
            ledger.spend(world, budget, period=DAY, images=1, usd=0.0006)
            ledger.record_image(key, PNG, {"extension": ".png"}, 0.0006)

    else:
        from generia_pipelines.ledger import Holder

        holder = Holder.new(f"bench-{world}")

        def unit(slot: int) -> None:
            key = post_key(world, DAY, slot)
            ledger.claim(key, holder, ttl_s=60)
            text = ledger.reserve(
                key, budget, holder=holder.token, ttl_s=60, kind="text", usd=0.001, period=DAY
            )
            ledger.record_paid_text(key, {"value": {"caption": "x"}}, text.reservation_id, 0.0)
            image = ledger.reserve(
                key,
                budget,
                holder=holder.token,
                ttl_s=60,
                kind="image",
                usd=0.0006,
                period=DAY,
                resume=True,
            )
            ledger.record_paid_image(key, PNG, {"extension": ".png"}, image.reservation_id, 0.0006)

    for slot in range(min(20, units)):  # warm the statement caches and the pool
        unit(10_000 + slot)
    statements["n"] = 0
    started = time.process_time()
    for slot in range(units):
        unit(slot)
    cpu = time.process_time() - started
    ledger.close()
    return {"cpu_ms": 1000 * cpu / units, "statements": statements["n"] / units}


@contextmanager
def worktree(rev: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="generia-before-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(path), rev],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
            check=False,
            capture_output=True,
        )


def run_side(side: str, tree: Path, url: str, schema: str | None, units: int) -> dict[str, float]:
    if url.startswith("sqlite:///") and url.endswith("{side}"):
        url = url.replace("{side}", side)  # one file per side: their journal modes differ
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [
        sys.executable,
        str(ROOT / "bench" / "ledger_overhead.py"),
        "--measure",
        side,
        "--url",
        url,
        "--units",
        str(units),
    ]
    if schema:
        args += ["--schema", schema]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, cwd=tree)
    if done.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def backend_figures(
    name: str, url: str, schema: str | None, trees: dict[str, Path], units: int, rounds: int
) -> dict[str, Any]:
    samples: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(rounds):
        for side in ("before", "after"):
            samples[side].append(run_side(side, trees[side], url, schema, units))
    row: dict[str, Any] = {"backend": name, "units": units, "rounds": rounds}
    for side, runs in samples.items():
        row[f"{side}_cpu_ms"] = statistics.median(r["cpu_ms"] for r in runs)
        row[f"{side}_statements"] = statistics.median(r["statements"] for r in runs)
        row[f"{side}_samples_ms"] = [round(r["cpu_ms"], 3) for r in runs]
    row["added_cpu_ms"] = row["after_cpu_ms"] - row["before_cpu_ms"]
    return row


def drop_schema(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="4de264e", help="the commit to compare with")
    parser.add_argument("--units", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--measure", choices=["before", "after"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--schema", default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.measure:  # the child: one side, one database
        print(json.dumps(measure(opts.measure, opts.url, opts.schema, opts.units)))
        return 0
    rows = []
    with worktree(opts.before) as old, tempfile.TemporaryDirectory() as tmp:
        trees = {"before": old, "after": ROOT}
        rows.append(
            backend_figures(
                "sqlite", f"sqlite:///{tmp}/ledger-{{side}}", None, trees, opts.units, opts.rounds
            )
        )
        schema = f"ledger_overhead_{uuid.uuid4().hex[:10]}"
        try:
            rows.append(
                backend_figures("postgresql", PG_URL, schema, trees, opts.units, opts.rounds)
            )
        except Exception as exc:
            rows.append({"backend": "postgresql", "skipped": f"{type(exc).__name__}: {exc}"})
        finally:
            drop_schema(schema)
    header = ("backend", "CPU ms/unit before", "after", "added", "SQL/unit before", "after")
    print("  ".join(f"{h:>18}" for h in header))
    for row in rows:
        if "skipped" in row:
            print(f"{row['backend']:>18}  skipped: {row['skipped']}")
            continue
        cells = (
            row["backend"],
            f"{row['before_cpu_ms']:.2f}",
            f"{row['after_cpu_ms']:.2f}",
            f"{row['added_cpu_ms']:+.2f}",
            f"{row['before_statements']:.1f}",
            f"{row['after_statements']:.1f}",
        )
        print("  ".join(f"{c:>18}" for c in cells))
    if opts.json:
        opts.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
