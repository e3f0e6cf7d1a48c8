"""Exactly-once under real processes: concurrent launches, SIGKILLs, a Runware outage, bad images.

Run: .venv/bin/python bench/exactly_once.py                 (full; ~15-25 minutes on 2 cores)
     .venv/bin/python bench/exactly_once.py --smoke         (tiny; a minute or two)
     .venv/bin/python bench/exactly_once.py --trials 40     (40 SIGKILL trials per backend)
     .venv/bin/python bench/exactly_once.py --compare HEAD  (also the pipeline of HEAD)

One local Generia stack and Runware stand-in (from this checkout) run in this process, with
image latency drawn per trial from 0.3-1 s so runs overlap. Every run of the code location's
``populate_world`` (partition = world) or ``daily_posts`` (``YYYY-MM-DD|world``) job is a real
OS process (``tests/crash/exactly_once_job.py``: ``execute_in_process`` on a persistent
instance under a temporary ``DAGSTER_HOME``), started warm and then told what to run, so two or
three can start at the same moment. Each scenario runs on SQLite (a ledger file under the home)
and on PostgreSQL (127.0.0.1:5432, a fresh database per scenario, dropped afterwards):

- ``concurrent``: 2 and 3 simultaneous runs of one world's setup and of one world-day;
- ``sigkill``: a run SIGKILLed at a random moment (uniform over its expected duration, or
  right when the stand-in bills an image, before its answer leaves, or right after the answer
  left, before the ledger can record it), then fresh runs until one succeeds;
- ``outage``: a run while Runware is unreachable (a closed port) must fail, bounded, naming
  Runware, with no image counted as spent; then the next run must complete the world;
- ``invalid``: the stand-in answers garbage bytes / images of the wrong size: the step stops,
  and images paid are compared with images needed; after the fault the next run completes.

After each trial the platform (the stack's ``/_admin`` endpoints), the stand-in's stats and the
ledger are audited: images needed vs billed, images paid twice, duplicate characters and
posts, worlds left stuck, leases taken over, reservations resumed, conflictTaskUUID answers and
getResponse calls. One table per backend is printed; ``--json FILE`` writes every figure.
``--compare REV`` checks REV out in a temporary git worktree and runs the same scenarios with
the job processes importing the pipeline from there (same venv, stack and stand-in).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eo_bed import SMOKE, Bed, Plan, ledger_url, postgres_problem
from eo_processes import ROOT, Launcher, frozen_pipeline
from eo_scenarios import Runner, Trial

SCENARIOS = ("concurrent", "sigkill", "outage", "invalid")


# -- summary ----------------------------------------------------------------------------------


def summarize(name: str, trials: Sequence[Trial], wall_s: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scenario": name,
        "trials": len(trials),
        "launches": sum(t.launches for t in trials),
        "runs": sum(t.runs for t in trials),
        "runs_failed": sum(t.runs_failed for t in trials),
        "runs_killed": sum(t.runs_killed for t in trials),
        "images_needed": sum(t.needed for t in trials),
        "images_billed": sum(t.billed for t in trials),
        "paid_twice": sum(t.paid_twice for t in trials),
        "duplicate_characters": sum(t.extra_characters for t in trials),
        "duplicate_posts": sum(t.extra_posts + t.duplicate_slots for t in trials),
        "stuck": sum(1 for t in trials if not t.complete),
        "lease_takeovers": sum(t.takeovers_logged for t in trials),
        "reservations_resumed": sum(int(t.detail.get("reservations_resumed", 0)) for t in trials),
        "conflicts": sum(t.conflicts for t in trials),
        "get_responses": sum(t.get_responses for t in trials),
        "open_reservations_left": sum(
            int(t.detail.get("reservations_open", 0)) for t in trials if t.complete
        ),
        "wall_s": round(wall_s, 1),
    }
    if name == "outage":
        row["outage_spent_images"] = sum(
            int(t.detail.get("outage_spent_images") or 0) for t in trials
        )
        row["outage_failed_bounded"] = all(
            t.detail.get("outage_run_failed") and t.detail.get("outage_bounded") for t in trials
        )
        row["outage_names_runware"] = all(t.detail.get("outage_names_runware") for t in trials)
        row["outage_run_s_max"] = max((t.detail.get("outage_run_s", 0) for t in trials), default=0)
    if name == "invalid":
        row["faulty_runs_failed"] = sum(bool(t.detail.get("faulty_run_failed")) for t in trials)
        row["images_paid_during_fault"] = sum(
            int(t.detail.get("images_paid_during_fault", 0)) for t in trials
        )
        row["images_needed_during_fault"] = sum(
            int(t.detail.get("images_needed", 0)) for t in trials
        )
        # A day whose budget the unusable (billed) images used up cannot complete afterwards.
        row["stuck_on_budget"] = sum(
            1
            for t in trials
            if not t.complete and any("budget exhausted" in e for e in t.errors[-1:])
        )
    if name == "sigkill":
        modes: dict[str, int] = {}
        for t in trials:
            modes[t.detail.get("kill_mode", "?")] = modes.get(t.detail.get("kill_mode", "?"), 0) + 1
        row["kill_modes"] = modes
        row["killed_before_finish"] = sum(t.runs_killed for t in trials)
    return row


def run_backend(
    bed: Bed, launcher: Launcher, backend: str, tag: str, chosen: Sequence[str]
) -> dict[str, Any]:
    runner = Runner(bed, launcher, backend, tag)
    out: dict[str, Any] = {"backend": backend, "rows": [], "trials": []}
    scenarios: dict[str, Callable[[], list[Trial]]] = {
        "concurrent": runner.concurrent,
        "sigkill": runner.sigkill,
        "outage": runner.outage,
        "invalid": runner.invalid,
    }
    for name in chosen:
        started = time.monotonic()
        with ledger_url(backend, bed.root, f"{tag}-{name}") as url:
            runner.url = url
            out.setdefault("calibration", {})[name] = runner.prepare_day_world()
            trials = scenarios[name]()
        row = summarize(name, trials, time.monotonic() - started)
        out["rows"].append(row)
        out["trials"].extend(asdict(t) for t in trials)
        print(f"  [{tag}] {name}: {json.dumps(_short(row))}", flush=True)
    out["module"] = runner.module
    return out


def _short(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("trials", "runs", "images_needed", "images_billed", "paid_twice", "stuck", "wall_s")
    return {k: row[k] for k in keys}


COLUMNS = (
    ("scenario", "scenario", 11),
    ("launches", "launch", 7),
    ("runs", "runs", 6),
    ("runs_failed", "failed", 7),
    ("runs_killed", "killed", 7),
    ("images_needed", "needed", 7),
    ("images_billed", "billed", 7),
    ("paid_twice", "paid2x", 7),
    ("duplicate_characters", "dupChr", 7),
    ("duplicate_posts", "dupPst", 7),
    ("stuck", "stuck", 6),
    ("lease_takeovers", "leaseTO", 8),
    ("reservations_resumed", "resumed", 8),
    ("conflicts", "conflct", 8),
    ("get_responses", "getResp", 8),
    ("wall_s", "wall s", 7),
)


def print_table(title: str, rows: Sequence[dict[str, Any]]) -> None:
    print(f"\n{title}")
    header = "".join(
        f"{label:>{width}}" if i else f"{label:<{width}}"
        for i, (_, label, width) in enumerate(COLUMNS)
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = []
        for i, (key, _, width) in enumerate(COLUMNS):
            value = row.get(key, "")
            cells.append(f"{value:<{width}}" if i == 0 else f"{value!s:>{width}}")
        print("".join(cells))
    for row in rows:
        if row["scenario"] == "outage":
            print(
                f"outage: images spent during it {row['outage_spent_images']} (must be 0); "
                f"run failed, bounded: {row['outage_failed_bounded']} "
                f"(longest {row['outage_run_s_max']} s); names Runware: "
                f"{row['outage_names_runware']}"
            )
        if row["scenario"] == "invalid":
            print(
                f"invalid: {row['faulty_runs_failed']} faulty runs stopped; images paid while "
                f"faulty {row['images_paid_during_fault']} for "
                f"{row['images_needed_during_fault']} needed; days left stuck after the fault "
                f"cleared because those images used up the budget: {row['stuck_on_budget']}"
            )
        if row["scenario"] == "sigkill":
            print(f"sigkill: kill moments {row['kill_modes']}")


def print_compare(backend: str, variants: Sequence[tuple[str, dict[str, Any]]]) -> None:
    keys = (
        "images_needed",
        "images_billed",
        "paid_twice",
        "duplicate_characters",
        "duplicate_posts",
        "stuck",
        "runs_failed",
    )
    print(f"\n{backend}: side by side ({' | '.join(name for name, _ in variants)})")
    header = f"{'scenario':<12}{'figure':<22}" + "".join(f"{name[:14]:>16}" for name, _ in variants)
    print(header)
    print("-" * len(header))
    scenarios = [row["scenario"] for row in variants[0][1]["rows"]]
    for scenario in scenarios:
        for key in keys:
            cells = []
            for _, result in variants:
                row = next((r for r in result["rows"] if r["scenario"] == scenario), {})
                cells.append(f"{row.get(key, '')!s:>16}")
            print(f"{scenario:<12}{key:<22}" + "".join(cells))


# -- main -------------------------------------------------------------------------------------


@contextmanager
def worktree(rev: str, root: Path) -> Iterator[Path]:
    path = root / f"worktree-{re.sub(r'[^A-Za-z0-9]', '_', rev)[:20]}"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True, check=False
        )


def run_all(
    plan: Plan,
    chosen: Sequence[str],
    backends: Sequence[str],
    compare: str | None,
    lease_env: dict[str, str],
    keep_logs: Path | None = None,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "plan": asdict(plan),
        "lease_env": lease_env,
        "notes": [],
        "backends": {},
    }
    pg_problem = postgres_problem() if "postgresql" in backends else None
    if pg_problem:
        report["notes"].append(pg_problem)
        print(f"note: {pg_problem}", flush=True)
        backends = [b for b in backends if b != "postgresql"]
    with tempfile.TemporaryDirectory(prefix="generia-eo-") as tmp:
        root = Path(tmp)
        bed = Bed(root, plan, lease_env)
        try:
            with contextmanager_or_none(compare, root) as other:
                # A frozen copy of this checkout's pipeline: edits made while the bench runs
                # (a schema change, a half-saved module) cannot reach its job processes.
                snapshot = frozen_pipeline(root)
                variants = [("current", snapshot)]
                if other is not None and compare is not None:
                    variants.append((compare, other))
                launchers = {
                    name: bed.launcher(path, f"v{i}") for i, (name, path) in enumerate(variants)
                }
                for backend in backends:
                    results = []
                    for index, (name, _) in enumerate(variants):
                        tag = f"{'ab'[index]}{backend[0]}"
                        print(f"{backend} / {name}:", flush=True)
                        results.append(
                            (name, run_backend(bed, launchers[name], backend, tag, chosen))
                        )
                    report["backends"][backend] = {name: result for name, result in results}
        finally:
            bed.close()
            if keep_logs is not None:
                shutil.copytree(root / "logs", keep_logs, dirs_exist_ok=True)
    return report


@contextmanager
def contextmanager_or_none(rev: str | None, root: Path) -> Iterator[Path | None]:
    if rev is None:
        yield None
        return
    with worktree(rev, root) as path:
        yield path


def print_report(report: dict[str, Any]) -> None:
    plan = report["plan"]
    print(
        f"\nworlds of {plan['characters']} characters and {plan['posts']} posts a day; image "
        f"latency {plan['latency_s'][0]}-{plan['latency_s'][1]} s; lease env "
        f"{report['lease_env'] or 'defaults (TTL 60 s, wait 90 s)'}"
    )
    for note in report["notes"]:
        print(f"note: {note}")
    for backend, variants in report["backends"].items():
        for name, result in variants.items():
            print_table(
                f"{backend} — pipeline: {name} ({result.get('module', '')})", result["rows"]
            )
        if len(variants) > 1:
            print_compare(backend, list(variants.items()))


def problems(report: dict[str, Any]) -> list[str]:
    """What the current pipeline got wrong (the exit status of the bench)."""
    found = []
    for backend, variants in report["backends"].items():
        result = variants.get("current")
        if result is None:
            continue
        for row in result["rows"]:
            for key in ("paid_twice", "duplicate_characters", "duplicate_posts", "stuck"):
                if row[key]:
                    found.append(f"{backend} {row['scenario']}: {key} = {row[key]}")
            if row["scenario"] == "outage":
                if row["outage_spent_images"] or not row["outage_failed_bounded"]:
                    found.append(f"{backend} outage: {row}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, both backends")
    parser.add_argument("--trials", type=int, default=None, help="SIGKILL trials per backend")
    parser.add_argument("--rounds", type=int, default=None, help="concurrent rounds (10 launches)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--compare", default=None, metavar="REV")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy the runs' logs here")
    parser.add_argument("--lease-ttl", type=float, default=None, help="GENERIA_LEASE_TTL_S")
    parser.add_argument("--lease-wait", type=float, default=None, help="GENERIA_LEASE_WAIT_S")
    opts = parser.parse_args(argv)
    plan = SMOKE if opts.smoke else Plan()
    if opts.trials is not None:
        plan = replace(plan, kill_trials=opts.trials)
    if opts.rounds is not None:
        plan = replace(plan, concurrent_rounds=opts.rounds)
    if opts.seed is not None:
        plan = replace(plan, seed=opts.seed)
    chosen = [s.strip() for s in opts.scenarios.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {SCENARIOS}")
    backends = [b.strip() for b in opts.backends.split(",") if b.strip()]
    lease_env = {}
    if opts.lease_ttl is not None:
        lease_env["GENERIA_LEASE_TTL_S"] = str(opts.lease_ttl)
    if opts.lease_wait is not None:
        lease_env["GENERIA_LEASE_WAIT_S"] = str(opts.lease_wait)

    def terminated(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # clean up: processes, temp dirs, databases

    signal.signal(signal.SIGTERM, terminated)
    started = time.monotonic()
    report = run_all(plan, chosen, backends, opts.compare, lease_env, opts.keep_logs)
    report["wall_s"] = round(time.monotonic() - started, 1)
    report["problems"] = problems(report)
    print_report(report)
    print(f"\ntotal {report['wall_s']} s; problems: {report['problems'] or 'none'}")
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=2, default=str))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
