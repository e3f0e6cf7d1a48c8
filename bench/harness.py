"""Benchmark harness: how fast and how cheaply the pipeline fills worlds when calls take time.

Run: .venv/bin/python bench/harness.py            (full; about 25 minutes)
     .venv/bin/python bench/harness.py --smoke    (tiny; correctness only, for CI)

It starts the local Generia stack with its Runware and text stand-ins in a child process
(``bench/stack_server.py``), a fresh PostgreSQL database for the Dagster instance and the
ledger, and run workers (``bench/pool.py``) that execute the real ``populate_world`` and
``daily_posts`` jobs. Then, with injected latency per dependency (text 400 ms, Runware image
1,000 ms, gRPC 5 ms, upload 20 ms by default), each scenario in two modes side by side:

- *per world-day*: one run per world's setup and one per world-day (as before issue 12);
- *batched K*: range runs of K partitions, cut as the sensor and the schedule cut them
  (K worlds' setup per run; K worlds' day per run);

and the scenarios:

- ``one``: one world of 25 characters and 150 posts (its setup run, then its day's run);
- ``backfill``: 20 new worlds at once, each set up and given a day of posts;
- ``refresh``: the daily refresh of 200 set-up worlds × 10 posts;
- ``refresh1000``: the daily refresh of 1,000 set-up worlds × 10 posts (batched only);
- ``naive``: the one-world work done one call after another (``bench/naive.py``), measured,
  and scaled per item to the other scenarios.

Both modes get the same account-wide limits (image and text calls in flight across all
runs): the per-world-day mode as 8 runs of 10 images and 16 texts, a batched mode as each of
its R concurrent runs' share of the same 80 and 128. Every scenario is compared with the
account-wide bound of ``bench/bound.py``, the same for both modes. CPU is accounted per
process (run workers, test bed, PostgreSQL, this process, the rest of the machine).

With zero latency, ``overhead`` measures the pipeline's own cost: CPU per generated item
(the slope between a small and a large world), the fixed cost of a run (CPU, wall, launch to
first step) warm and in a fresh process, and a batched run's cost per world-day, with and
without DAGSTER_EVENT_BATCH_SIZE=100 and with pooled PostgreSQL connections
(``bench/harness_overhead.py``). Every scenario is audited: the platform must hold exactly
the characters and posts asked for, the ledger no duplicate, and Runware must have been paid
once per image. Figures are printed as a table and written as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bound import Account, Latency, Limits, RunWork, Terms, account_bound, scenario_bound
from cpu import CpuMeter
from harness_bed import (
    PROMPTS,
    AuditError,
    Stack,
    WorldSize,
    postgres_database,
    run_config,
    world_entry,
    write_dagster_home,
)
from pool import PROFILE_VAR, RunPool, RunSpec, RunStats, TaskOptions

#: The first day whose posts the scenarios make; each scenario and mode takes its own day
#: from here on (its partition exists: the start date is before, today is after).
DAY = date(2026, 11, 20)
START_DATE = DAY - timedelta(days=6)
#: The day the zero-latency overhead runs post for.
OVERHEAD_DAY = DAY - timedelta(days=1)
#: The deployment's settings for run workers: event batches, pooled storage connections.
DEPLOYMENT = TaskOptions(env=(("DAGSTER_EVENT_BATCH_SIZE", "100"),), pooled=True)
SCENARIOS = ("overhead", "one", "naive", "backfill", "refresh", "refresh1000")
PER_WORLD_DAY = "per world-day"


@dataclass(frozen=True)
class Plan:
    """Sizes of everything the harness does; the defaults are the issue's scenarios."""

    one: WorldSize = WorldSize(25, 150)  # noqa: RUF009 (frozen)
    backfill_worlds: int = 20
    backfill: WorldSize = WorldSize(25, 150)  # noqa: RUF009 (frozen)
    refresh_worlds: int = 200
    refresh_big_worlds: int = 1000
    refresh: WorldSize = WorldSize(5, 10)  # noqa: RUF009 (frozen)
    naive: WorldSize = WorldSize(25, 150)  # noqa: RUF009 (frozen)
    overhead_small: WorldSize = WorldSize(5, 20)  # noqa: RUF009 (frozen)
    overhead_large: WorldSize = WorldSize(25, 150)  # noqa: RUF009 (frozen)
    #: World-days of the batched overhead runs (each variant its own refresh worlds).
    overhead_range: int = 50
    latency: Latency = field(default_factory=Latency)
    #: The per-world-day mode's runs at once and per-run limits; their product is the
    #: account-wide limit both modes share.
    limits: Limits = field(default_factory=Limits)
    #: K of each batched mode (partitions per run).
    per_run: tuple[int, ...] = (50,)
    image_size: int = 128
    timeout_s: float = 1800.0
    #: How the scenarios' runs execute, in both modes: as the deployment runs them
    #: (DAGSTER_EVENT_BATCH_SIZE=100, PostgreSQL connections kept open), or Dagster's defaults.
    options: TaskOptions = DEPLOYMENT

    @property
    def account(self) -> Account:
        lim = self.limits
        return Account(
            images=lim.runs * lim.images_per_run,
            texts=lim.runs * lim.texts_per_run,
            grpc=lim.runs * lim.grpc_per_run,
        )

    @property
    def modes(self) -> list[tuple[str, int]]:
        """(name, K): K = 1 is the per-world-day mode."""
        return [(PER_WORLD_DAY, 1)] + [(f"batched K={k}", k) for k in self.per_run]


SMOKE = Plan(
    one=WorldSize(3, 6),
    backfill_worlds=3,
    backfill=WorldSize(2, 4),
    refresh_worlds=6,
    refresh_big_worlds=8,
    refresh=WorldSize(2, 3),
    naive=WorldSize(2, 3),
    overhead_small=WorldSize(2, 2),
    overhead_large=WorldSize(3, 6),
    overhead_range=2,
    latency=Latency(text=0.02, image=0.05, grpc=0.002, upload=0.005),
    limits=Limits(runs=2),
    per_run=(2,),
    timeout_s=300.0,
)


@dataclass
class Scenario:
    """One scenario's figures in one mode."""

    name: str
    mode: str
    worlds: int
    characters: int
    posts: int
    wall_s: float
    runs: int
    pipeline_cpu_s: float
    cpu_s: dict[str, float]
    limits: Limits
    bound: Terms | None = None
    legacy_bound: Terms | None = None
    naive_s: float | None = None
    naive_measured: bool = False
    events: int = 0
    world_days: int = 0
    catalog_worlds: int = 0
    #: The longest runs, with each step's seconds: where the time goes.
    slowest_runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def items(self) -> int:
        """Characters, avatars and posts made."""
        return 2 * self.characters + self.posts

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scenario": self.name,
            "mode": self.mode,
            "worlds": self.worlds,
            "items": self.items,
            "runs": self.runs,
            "world_days": self.world_days,
            "per_run_limits": {
                "images": self.limits.images_per_run,
                "texts": self.limits.texts_per_run,
                "runs_at_once": self.limits.runs,
            },
            "wall_s": round(self.wall_s, 2),
            "items_per_s": round(self.items / self.wall_s, 1) if self.wall_s else None,
            "pipeline_cpu_ms_per_item": round(1000 * self.pipeline_cpu_s / max(1, self.items), 2),
            "cpu_s": self.cpu_s,
            "events_stored": self.events,
            "catalog_worlds": self.catalog_worlds,
        }
        if self.world_days:
            out["worker_cpu_ms_per_world_day"] = round(
                1000 * self.pipeline_cpu_s / self.world_days, 1
            )
        if self.bound is not None:
            out["bound_s"] = round(self.bound.seconds, 2)
            out["bound_by"] = self.bound.binding
            out["ratio_to_bound"] = round(self.wall_s / self.bound.seconds, 3)
            out["bound_terms"] = {k: round(v, 2) for k, v in self.bound.terms.items()}
        if self.legacy_bound is not None:
            out["run_slot_bound_s"] = round(self.legacy_bound.seconds, 2)
            out["ratio_to_run_slot_bound"] = round(self.wall_s / self.legacy_bound.seconds, 3)
        if self.naive_s is not None:
            out["naive_s"] = round(self.naive_s, 1)
            out["naive_measured"] = self.naive_measured
            out["speedup_vs_naive"] = round(self.naive_s / self.wall_s, 1)
        out["slowest_runs"] = self.slowest_runs
        return out


# -- runs ------------------------------------------------------------------------------------


def setup_run(world_id: str) -> RunSpec:
    return RunSpec("populate_world", world_id)


def day_key(world_id: str, day: date) -> str:
    return f"{day.isoformat()}|{world_id}"


def day_run(world_id: str, day: date = DAY) -> RunSpec:
    return RunSpec("daily_posts", day_key(world_id, day))


def setup_range(worlds: Sequence[str]) -> RunSpec:
    """One run setting up ``worlds`` (contiguous in the partitions' order)."""
    return RunSpec("populate_world", worlds[0], worlds[-1], len(worlds))


def day_range(worlds: Sequence[str], day: date) -> RunSpec:
    """One run making ``day``'s posts of ``worlds`` (contiguous in the partitions' order)."""
    return RunSpec("daily_posts", day_key(worlds[0], day), day_key(worlds[-1], day), len(worlds))


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class Bench:
    """The test bed, the run workers, CPU accounting and the audit, shared by the scenarios."""

    def __init__(
        self,
        plan: Plan,
        stack: Stack,
        pool: RunPool,
        env: Mapping[str, str],
        database: str = "",
    ) -> None:
        self.plan = plan
        self.stack = stack
        self.pool = pool
        self.env = env
        self.http = httpx.Client(base_url=env["GENERIA_STACK_URL"], timeout=30.0)
        self.meter = CpuMeter({"workers": pool.pids, "stack": [stack.proc.pid]}, database=database)
        #: Per world: (characters, posts) the platform should hold by now.
        self.expected: dict[str, tuple[int, int]] = {}
        self.catalog_worlds = 0

    def write_catalog(self, refresh: int) -> None:
        """The worlds file with ``refresh`` refresh worlds (runs re-read it)."""
        entries = catalog(self.plan, self.plan.limits.runs, refresh)
        path = Path(self.env["GENERIA_WORLDS_FILE"])
        path.write_text(yaml.safe_dump({"worlds": entries}, sort_keys=False))
        self.catalog_worlds = len(entries)

    def limits_for(self, tasks: int, per_run: int) -> Limits:
        """The per-run limits of a mode: per world-day the plan's; batched, each concurrent
        run's share of the same account-wide limits."""
        if per_run == 1:
            return self.plan.limits
        return self.plan.account.per_run(min(self.plan.limits.runs, max(1, tasks)))

    def run(
        self,
        tasks: Sequence[Sequence[RunSpec]],
        limits: Limits | None = None,
        options: TaskOptions | None = None,
    ) -> tuple[float, dict[str, float], list[RunStats]]:
        """Run the tasks; wall time, CPU seconds per process group and every run's stats."""
        limits = limits or self.plan.limits
        config = run_config(limits, self.plan.image_size)
        before = self.meter.sample()
        wall, results = self.pool.run(
            tasks, config, self.plan.timeout_s, options=options, slots=limits.runs
        )
        cpu = CpuMeter.delta(before, self.meter.sample())
        stats = [run for task in results for run in task]
        failed = [f"{s.job} {s.partition}: {s.error}" for s in stats if not s.success]
        if failed or len(stats) != sum(len(task) for task in tasks):
            raise AuditError(f"{len(failed)} runs failed: {failed[:5]}")
        return wall, cpu, stats

    def made(self, worlds: Mapping[str, WorldSize], days: int, new: bool) -> None:
        """Record what the platform should now hold for ``worlds``."""
        for world_id, size in worlds.items():
            characters, posts = self.expected.get(world_id, (0, 0))
            self.expected[world_id] = (
                size.characters if new else characters,
                posts + size.posts * days,
            )

    def audit(self, worlds: Sequence[str]) -> None:
        """Exactly the asked-for characters and posts on the platform, paid once each."""
        from generia_pipelines.ledger import Ledger

        problems = []
        with Ledger(self.env["GENERIA_LEDGER_URL"]) as ledger:
            for world_id in worlds:
                characters, posts = self.expected[world_id]
                made = len(self.http.get(f"/_admin/worlds/{world_id}/characters").json())
                posted = len(self.http.get(f"/_admin/worlds/{world_id}/posts").json())
                paid = sum(
                    1
                    for kind in ("avatars", "posts")
                    for unit in ledger.units(world_id, kind)
                    if unit.media_id or unit.image is not None
                )
                if (made, posted, paid) != (characters, posts, characters + posts):
                    problems.append(
                        f"{world_id}: {made} characters, {posted} posts, {paid} images paid; "
                        f"want {characters}, {posts}, {characters + posts}"
                    )
            duplicates = ledger.duplicates()
        if duplicates:
            problems.append(f"{len(duplicates)} duplicates in the ledger: {duplicates[:3]}")
        if problems:
            raise AuditError("; ".join(problems[:5]))

    def scenario(
        self,
        name: str,
        mode: tuple[str, int],
        worlds: Mapping[str, WorldSize],
        tasks: Sequence[Sequence[RunSpec]],
        work: Sequence[Sequence[RunWork]],
        *,
        new_worlds: bool,
    ) -> Scenario:
        limits = self.limits_for(len(tasks), mode[1])
        wall, cpu, stats = self.run(tasks, limits, self.plan.options)
        self.made(worlds, 1, new_worlds)
        self.audit(list(worlds))
        characters = sum(s.characters for s in worlds.values()) if new_worlds else 0
        posts = sum(s.posts for s in worlds.values())
        scenario = Scenario(
            name,
            mode[0],
            len(worlds),
            characters,
            posts,
            wall,
            len(stats),
            sum(s.cpu_s for s in stats),
            cpu,
            limits,
            bound=account_bound(work, self.plan.latency, self.plan.account),
            events=sum(s.events for s in stats),
            world_days=len(worlds),
            catalog_worlds=self.catalog_worlds,
            slowest_runs=[
                {
                    "run": f"{s.job} {s.partition}",
                    "partitions": s.partitions,
                    "wall_s": round(s.wall_s, 2),
                    "cpu_s": round(s.cpu_s, 2),
                    "first_step_s": round(s.first_step_s, 2),
                    "steps_s": {key: round(sec, 2) for key, sec in s.steps},
                }
                for s in sorted(stats, key=lambda s: s.wall_s, reverse=True)[:3]
            ],
        )
        if mode[1] == 1:
            scenario.legacy_bound = scenario_bound(work, self.plan.latency, self.plan.limits)
        print(f"  {name}, {mode[0]}: {wall:.1f} s", flush=True)
        return scenario


def one_world(bench: Bench) -> Scenario:
    size = bench.plan.one
    worlds = {"one-world": size}
    return bench.scenario(
        "one world",
        (PER_WORLD_DAY, 1),
        worlds,
        [[setup_run("one-world"), day_run("one-world")]],
        [[RunWork(characters=size.characters), RunWork(posts=size.posts)]],
        new_worlds=True,
    )


def backfill_worlds(plan: Plan, mode_index: int) -> dict[str, WorldSize]:
    return {f"fill-{mode_index}-{i:03d}": plan.backfill for i in range(plan.backfill_worlds)}


def backfill(bench: Bench, mode_index: int) -> Scenario:
    """New worlds set up and given a day of posts; per world-day a setup run and a day run
    per world, batched a setup range and a day range per K worlds."""
    mode = bench.plan.modes[mode_index]
    size = bench.plan.backfill
    worlds = backfill_worlds(bench.plan, mode_index)
    ids = list(worlds)
    if mode[1] == 1:
        tasks = [[setup_run(w), day_run(w)] for w in ids]
    else:
        tasks = [[setup_range(c), day_range(c, DAY)] for c in chunks(ids, mode[1])]
    return bench.scenario(
        f"backfill of {len(worlds)} new worlds",
        mode,
        worlds,
        tasks,
        [[RunWork(characters=size.characters), RunWork(posts=size.posts)] for _ in worlds],
        new_worlds=True,
    )


def refresh_worlds(plan: Plan, count: int | None = None) -> dict[str, WorldSize]:
    return {f"daily-{i:04d}": plan.refresh for i in range(count or plan.refresh_worlds)}


def refresh(bench: Bench, mode_index: int, count: int, day: date) -> Scenario:
    """The day's runs of set-up worlds (set up earlier at zero latency)."""
    mode = bench.plan.modes[mode_index]
    worlds = refresh_worlds(bench.plan, count)
    ids = list(worlds)
    if mode[1] == 1:
        tasks = [[day_run(w, day)] for w in ids]
    else:
        tasks = [[day_range(c, day)] for c in chunks(ids, mode[1])]
    return bench.scenario(
        f"daily refresh of {len(worlds)} worlds",
        mode,
        worlds,
        tasks,
        [[RunWork(posts=s.posts)] for s in worlds.values()],
        new_worlds=False,
    )


def naive(bench: Bench, plan: Plan) -> tuple[float, float, float]:
    """Measured naive seconds per character and per post, and for the world's setup."""
    from naive import populate_naively

    from generia_pipelines.catalog import WorldSpec

    world = WorldSpec(
        id="naive-world",
        name="Naive World",
        prompt=PROMPTS[0],
        characters=plan.naive.characters,
        posts_per_day=plan.naive.posts,
    )
    times = asyncio.run(populate_naively(world, DAY, image_size=plan.image_size))
    return times.setup_s, times.per_character_s, times.per_post_s


# -- the run ---------------------------------------------------------------------------------


def warm_up_tasks(index: int) -> list[RunSpec]:
    world_id = f"warm-{index:02d}"
    return [setup_run(world_id), day_run(world_id)]


def catalog(plan: Plan, workers: int, refresh: int | None = None) -> list[dict[str, Any]]:
    """The worlds file's entries: every scenario's worlds, with ``refresh`` refresh worlds
    (default as many as any scenario uses).

    A run reads the whole file (0.5 s of CPU at 1,000 worlds), so the scenarios of 200
    worlds run with a file of their size and only the 1,000-world refresh with all."""
    entries: list[tuple[str, WorldSize]] = [
        (f"warm-{i:02d}", WorldSize(2, 2)) for i in range(workers)
    ]
    entries += [("cpu-small", plan.overhead_small), ("cpu-large", plan.overhead_large)]
    entries += [("one-world", plan.one)]
    for index in range(len(plan.modes)):
        entries += list(backfill_worlds(plan, index).items())
    count = refresh or max(plan.refresh_worlds, plan.refresh_big_worlds)
    entries += list(refresh_worlds(plan, count).items())
    return [world_entry(w, size, i) for i, (w, size) in enumerate(entries)]


def parse(argv: Sequence[str] | None) -> tuple[Plan, list[str], argparse.Namespace]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--latency", default="", help="e.g. text=0.4,image=1,grpc=0.005,upload=0.02"
    )
    parser.add_argument("--runs", type=int, default=None, help="runs at once (default 8)")
    parser.add_argument("--images-per-run", type=int, default=None)
    parser.add_argument("--texts-per-run", type=int, default=None)
    parser.add_argument(
        "--per-run", default="", help="K of each batched mode, e.g. 50 or 50,10 (default 50)"
    )
    parser.add_argument("--refresh-big", type=int, default=None, help="worlds (default 1000)")
    parser.add_argument("--image-size", type=int, default=None, help="pixels (default 128)")
    parser.add_argument("--naive-posts", type=int, default=None, help="naive sample size")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--dagster-defaults",
        action="store_true",
        help="scenario runs without DAGSTER_EVENT_BATCH_SIZE and with a connection per "
        "statement (default: as the deployment, batches of 100 and pooled connections)",
    )
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--profile", type=Path, default=None, help="write a CPU profile of every run here"
    )
    opts = parser.parse_args(argv)

    plan = SMOKE if opts.smoke else Plan()
    if opts.latency:
        values = dict(item.split("=", 1) for item in opts.latency.split(","))
        plan = replace(
            plan, latency=replace(plan.latency, **{k: float(v) for k, v in values.items()})
        )
    limits = plan.limits
    for attr, value in (
        ("runs", opts.runs),
        ("images_per_run", opts.images_per_run),
        ("texts_per_run", opts.texts_per_run),
    ):
        if value is not None:
            limits = replace(limits, **{attr: value})
    plan = replace(plan, limits=limits)
    if opts.per_run:
        plan = replace(plan, per_run=tuple(int(k) for k in opts.per_run.split(",")))
    if opts.refresh_big:
        plan = replace(plan, refresh_big_worlds=opts.refresh_big)
    if opts.image_size:
        plan = replace(plan, image_size=opts.image_size)
    if opts.dagster_defaults:
        plan = replace(plan, options=TaskOptions())
    if opts.naive_posts is not None:
        plan = replace(plan, naive=replace(plan.naive, posts=opts.naive_posts))
    chosen = [s.strip() for s in opts.scenarios.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}")
    return plan, chosen, opts


def main(argv: Sequence[str] | None = None) -> int:
    plan, chosen, opts = parse(argv)
    if opts.profile:
        opts.profile.mkdir(parents=True, exist_ok=True)
        os.environ[PROFILE_VAR] = str(opts.profile.resolve())
    report = run_all(plan, chosen, opts.keep_db)
    print_report(report)
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


def machine() -> dict[str, Any]:
    import dagster

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "dagster": dagster.__version__,
    }


def prepare_refresh_worlds(bench: Bench, count: int) -> dict[str, float]:
    """Set the refresh worlds up, in batched runs at zero latency (not a figure)."""
    ids = list(refresh_worlds(bench.plan, count))
    tasks = [[setup_range(c)] for c in chunks(ids, max(bench.plan.per_run[0], 2))]
    _, cpu, _ = bench.run(tasks, bench.limits_for(len(tasks), 2), bench.plan.options)
    bench.made(refresh_worlds(bench.plan, count), 0, True)
    return cpu


def run_scenarios(bench: Bench, chosen: Sequence[str], report: dict[str, Any]) -> None:
    """The latency-bound scenarios, each mode beside the other, in one run."""
    plan = bench.plan
    scenarios: list[Scenario] = []
    if "one" in chosen:
        scenarios.append(one_world(bench))
    naive_times = None
    if "naive" in chosen:
        naive_times = naive(bench, plan)
        report["naive_per_item_s"] = {
            "world_setup": round(naive_times[0], 3),
            "character_with_avatar": round(naive_times[1], 3),
            "post": round(naive_times[2], 3),
        }
    modes = range(len(plan.modes))
    if "backfill" in chosen:
        scenarios.extend(backfill(bench, index) for index in modes)
    if "refresh" in chosen:
        for index in modes:
            day = DAY + timedelta(days=index)
            scenarios.append(refresh(bench, index, plan.refresh_worlds, day))
    if "refresh1000" in chosen:
        bench.write_catalog(plan.refresh_big_worlds)
        day = DAY + timedelta(days=len(plan.modes))
        scenarios.append(refresh(bench, 1, plan.refresh_big_worlds, day))
    for scenario in scenarios:
        if naive_times is not None:
            setup, per_character, per_post = naive_times
            new_worlds = scenario.worlds if scenario.characters else 0
            scenario.naive_s = (
                new_worlds * setup + scenario.characters * per_character + scenario.posts * per_post
            )
            scenario.naive_measured = scenario.name == "one world" and plan.naive == plan.one
        report["scenarios"].append(scenario.row())


def run_all(plan: Plan, chosen: Sequence[str], keep_db: bool) -> dict[str, Any]:
    from harness_overhead import overhead

    report: dict[str, Any] = {
        "machine": machine(),
        "latency_s": asdict(plan.latency),
        "limits": asdict(plan.limits),
        "account": asdict(plan.account),
        "per_run": list(plan.per_run),
        "scenario_runs": asdict(plan.options),
        "image_size": plan.image_size,
        "scenarios": [],
    }
    with (
        tempfile.TemporaryDirectory(prefix="generia-bench-") as tmp,
        postgres_database(keep_db) as pg,
    ):
        root = Path(tmp)
        stack = Stack(root / "stack")
        pool: RunPool | None = None
        bench: Bench | None = None
        try:
            worlds_file = root / "worlds.yaml"
            worlds_file.write_text(
                yaml.safe_dump({"worlds": catalog(plan, plan.limits.runs)}, sort_keys=False)
            )
            write_dagster_home(root / "dagster_home", pg)
            env = {
                **{k: v for k, v in stack.env.items() if k != "GENERIA_WORLD_ADDR"},
                "GENERIA_WORLDS_FILE": str(worlds_file),
                "DAGSTER_HOME": str(root / "dagster_home"),
                "GENERIA_LEDGER_URL": (
                    f"postgresql+psycopg2://{pg['user']}:{pg['password']}@{pg['host']}:"
                    f"{pg['port']}/{pg['db']}"
                ),
                "GENERIA_POSTS_START_DATE": START_DATE.isoformat(),
            }
            os.environ.update(env)
            _add_partitions([w["id"] for w in yaml.safe_load(worlds_file.read_text())["worlds"]])
            started = time.perf_counter()
            pool = RunPool(plan.limits.runs, env)
            bench = Bench(plan, stack, pool, env, pg["db"])
            config = run_config(plan.limits, plan.image_size)
            warm = pool.each_worker(warm_up_tasks, config, plan.timeout_s)
            failed = [s for runs in warm for s in runs if not s.success]
            if failed:
                raise AuditError(f"warm-up runs failed: {failed[:2]}")
            report["workers_ready_s"] = round(time.perf_counter() - started, 1)
            refresh_count = 0
            if {"overhead", "refresh"} & set(chosen):
                refresh_count = plan.refresh_worlds
            if "refresh1000" in chosen:
                refresh_count = max(refresh_count, plan.refresh_big_worlds)
            if refresh_count:  # set the refresh worlds up before latency goes on
                print(f"setting {refresh_count} refresh worlds up", flush=True)
                report["refresh_setup_cpu_s"] = prepare_refresh_worlds(bench, refresh_count)
            bench.write_catalog(plan.refresh_worlds)
            if "overhead" in chosen:
                print("overhead at zero latency", flush=True)
                report["overhead"] = overhead(bench, OVERHEAD_DAY)
            stack.set_latency(plan.latency)
            run_scenarios(bench, chosen, report)
        finally:
            if bench is not None:
                bench.meter.close()
            if pool is not None:
                pool.close()
            stack.close()
    return report


def _add_partitions(world_ids: Sequence[str]) -> None:
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("worlds", list(world_ids))


def print_report(report: Mapping[str, Any]) -> None:
    from harness_overhead import print_overhead

    lat, lim, acc = report["latency_s"], report["limits"], report["account"]
    print(
        f"\nlatency: text {lat['text']} s, image {lat['image']} s, gRPC {lat['grpc']} s, "
        f"upload {lat['upload']} s; account-wide: {acc['images']} images and {acc['texts']} "
        f"texts in flight (per world-day: {lim['runs']} runs × {lim['images_per_run']} / "
        f"{lim['texts_per_run']}); images {report['image_size']} px"
    )
    header = (
        f"{'scenario':<32}{'mode':<15}{'runs':>6}{'wall s':>8}{'bound s':>8}{'× bound':>8}"
        f"{'workers':>8}{'stack':>7}{'pg':>7}{'pg db':>7}{'other':>7}{'ms/item':>8}  bound set by"
    )
    print(header)
    print("-" * len(header))
    for row in report["scenarios"]:
        cpu = row["cpu_s"]
        print(
            f"{row['scenario']:<32}{row['mode']:<15}{row['runs']:>6}{row['wall_s']:>8.1f}"
            f"{row.get('bound_s', 0):>8.1f}{row.get('ratio_to_bound', 0):>8.2f}"
            f"{cpu.get('workers', 0):>8.1f}{cpu.get('stack', 0):>7.1f}"
            f"{cpu.get('postgres', 0):>7.1f}{cpu.get('postgres_db', 0):>7.1f}"
            f"{cpu.get('other', 0):>7.1f}"
            f"{row['pipeline_cpu_ms_per_item']:>8.1f}  {row.get('bound_by', '')}"
        )
    print(
        "CPU columns: seconds used during the scenario; pg: the whole PostgreSQL server, "
        "pg db: its share for this database; other: the rest of the machine"
    )
    if "naive_per_item_s" in report:
        print(f"naive, measured: {report['naive_per_item_s']}")
    if "overhead" in report:
        print_overhead(report["overhead"])


if __name__ == "__main__":
    sys.exit(main())
