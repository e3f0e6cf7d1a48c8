"""Benchmark harness: how fast and how cheaply the pipeline fills worlds when calls take time.

Run: .venv/bin/python bench/harness.py            (full; about 10 minutes)
     .venv/bin/python bench/harness.py --smoke    (tiny; correctness only, for CI)

It starts the local Generia stack with its Runware and text stand-ins in a child process
(``bench/stack_server.py``), a fresh PostgreSQL database for the Dagster instance and the
ledger, and K run workers (``bench/pool.py``) that execute the real ``populate_world`` and
``daily_posts`` jobs. Then, with injected latency per dependency (text 400 ms, Runware image
1,000 ms, gRPC 5 ms, upload 20 ms by default):

- ``one``: one world of 25 characters and 150 posts (its setup run, then its day's run);
- ``backfill``: 20 new worlds at once, each set up and given a day of posts;
- ``refresh``: the daily refresh of 200 set-up worlds × 10 posts;
- ``naive``: the one-world work done one call after another (``bench/naive.py``), measured,
  and scaled per item to the other scenarios;

and with zero latency the pipeline's own overhead: CPU per generated item (the slope between
a small and a large world, in warm workers), the fixed cost of a run (CPU, wall, launch to
first step) warm and in a fresh process. Every scenario is audited: the platform must hold
exactly the characters and posts asked for, the ledger no duplicate, and Runware must have
been paid once per image. Figures are printed as a table and written as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bound import Latency, Limits, RunWork, Terms, scenario_bound
from pool import PROFILE_VAR, RunPool, RunSpec, RunStats

HERE = Path(__file__).resolve().parent
#: The day whose posts the scenarios make (its partition exists from the start date on).
DAY = date(2026, 11, 20)
START_DATE = DAY - timedelta(days=6)
PROMPTS = (
    "A foggy harbour town of lighthouse keepers, net menders and smugglers",
    "A desert caravan city of glass domes, spice traders and star readers",
    "A mountain monastery village of tea growers, bell makers and cartographers",
    "A drowned archipelago of stilt houses, pearl divers and radio hobbyists",
)


@dataclass(frozen=True)
class WorldSize:
    characters: int
    posts: int


@dataclass(frozen=True)
class Plan:
    """Sizes of everything the harness does; the defaults are the issue's scenarios."""

    one: WorldSize = WorldSize(25, 150)
    backfill_worlds: int = 20
    backfill: WorldSize = WorldSize(25, 150)
    refresh_worlds: int = 200
    refresh: WorldSize = WorldSize(5, 10)
    naive: WorldSize = WorldSize(25, 150)
    overhead_small: WorldSize = WorldSize(5, 20)
    overhead_large: WorldSize = WorldSize(25, 150)
    latency: Latency = field(default_factory=Latency)
    limits: Limits = field(default_factory=Limits)
    image_size: int = 128
    timeout_s: float = 1800.0


SMOKE = Plan(
    one=WorldSize(3, 6),
    backfill_worlds=3,
    backfill=WorldSize(2, 4),
    refresh_worlds=4,
    refresh=WorldSize(2, 3),
    naive=WorldSize(2, 3),
    overhead_small=WorldSize(2, 2),
    overhead_large=WorldSize(3, 6),
    latency=Latency(text=0.02, image=0.05, grpc=0.002, upload=0.005),
    limits=Limits(runs=2),
    timeout_s=300.0,
)


@dataclass
class Scenario:
    """One scenario's figures."""

    name: str
    worlds: int
    characters: int
    posts: int
    wall_s: float
    runs: int
    pipeline_cpu_s: float
    stack_cpu_s: float
    bound: Terms | None = None
    naive_s: float | None = None
    naive_measured: bool = False
    notes: list[str] = field(default_factory=list)
    #: The longest runs, with each step's seconds: where the time goes.
    slowest_runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def items(self) -> int:
        """Characters, avatars and posts made."""
        return 2 * self.characters + self.posts

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scenario": self.name,
            "worlds": self.worlds,
            "items": self.items,
            "runs": self.runs,
            "wall_s": round(self.wall_s, 2),
            "items_per_s": round(self.items / self.wall_s, 1) if self.wall_s else None,
            "pipeline_cpu_ms_per_item": round(1000 * self.pipeline_cpu_s / max(1, self.items), 2),
            "stack_cpu_s": round(self.stack_cpu_s, 1),
        }
        if self.bound is not None:
            out["bound_s"] = round(self.bound.seconds, 2)
            out["bound_by"] = self.bound.binding
            out["ratio_to_bound"] = round(self.wall_s / self.bound.seconds, 3)
            out["bound_terms"] = {k: round(v, 2) for k, v in self.bound.terms.items()}
        if self.naive_s is not None:
            out["naive_s"] = round(self.naive_s, 1)
            out["naive_measured"] = self.naive_measured
            out["speedup_vs_naive"] = round(self.naive_s / self.wall_s, 1)
        if self.notes:
            out["notes"] = self.notes
        out["slowest_runs"] = self.slowest_runs
        return out


class AuditError(AssertionError):
    """The platform or the ledger is not what the scenario should have left."""


# -- the test bed ----------------------------------------------------------------------------


class Stack:
    """``bench/stack_server.py`` as a child process, driven by JSON lines."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "stack_server.py"), "--data-dir", str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.env: dict[str, str] = self._answer(60.0)["env"]

    def _answer(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout_s):
                raise TimeoutError(f"the stack did not answer in {timeout_s} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the stack exited")
        answer: dict[str, Any] = json.loads(line)
        if answer.get("ok") is False:
            raise RuntimeError(f"the stack refused a command: {answer['error']}")
        return answer

    def command(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._answer(30.0)

    def set_latency(self, lat: Latency) -> None:
        self.command(latency=asdict(lat))

    def cpu_s(self) -> float:
        return float(self.command(cpu=None)["cpu_s"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command(stop=None)
            except (OSError, RuntimeError, TimeoutError):
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextmanager
def postgres_database(keep: bool) -> Iterator[dict[str, str]]:
    """A fresh database for the Dagster instance and the ledger; dropped afterwards."""
    import psycopg2

    params = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER") or os.environ.get("USER") or "postgres",
        "password": os.environ.get("PGPASSWORD", ""),
    }
    name = f"generia_bench_{os.getpid()}"

    def admin(sql: str) -> None:
        conn = psycopg2.connect(dbname="postgres", connect_timeout=10, **params)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    try:
        admin(f'DROP DATABASE IF EXISTS "{name}"')
        admin(f'CREATE DATABASE "{name}"')
    except psycopg2.OperationalError as exc:
        where = f"{params['host']}:{params['port']}"
        raise SystemExit(f"PostgreSQL at {where} is needed: {exc}") from None
    try:
        yield {**params, "db": name}
    finally:
        if not keep:
            admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_dagster_home(home: Path, pg: Mapping[str, str]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    config = {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "hostname": pg["host"],
                    "port": int(pg["port"]),
                    "username": pg["user"],
                    "password": pg["password"],
                    "db_name": pg["db"],
                    "scheme": "postgresql+psycopg2",
                }
            }
        },
        "telemetry": {"enabled": False},
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def world_entry(world_id: str, size: WorldSize, index: int) -> dict[str, Any]:
    return {
        "id": world_id,
        "name": world_id.replace("-", " ").title(),
        "prompt": PROMPTS[index % len(PROMPTS)],
        "characters": size.characters,
        "posts_per_day": size.posts,
    }


def run_config(plan: Plan) -> dict[str, Any]:
    """Per-run resource settings: the limits in force and the image size."""
    # Run config replaces a resource's whole configuration, so everything the environment set
    # is passed again (by variable name: the key never appears in the run's config).
    text: dict[str, Any] = {"max_concurrency": plan.limits.texts_per_run}
    for name, variable in (
        ("backend", "GENERIA_TEXT_BACKEND"),
        ("base_url", "GENERIA_TEXT_BASE_URL"),
        ("api_key", "GENERIA_TEXT_API_KEY"),
        ("model", "GENERIA_TEXT_MODEL"),
    ):
        text[name] = {"env": variable}
    return {
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        "resources": {
            "runware": {
                "config": {
                    "api_key": {"env": "RUNWARE_API_KEY"},
                    "url": {"env": "RUNWARE_URL"},
                    "width": plan.image_size,
                    "height": plan.image_size,
                    "concurrency": plan.limits.images_per_run,
                }
            },
            "text": {"config": text},
        },
    }


# -- scenarios -------------------------------------------------------------------------------


def setup_run(world_id: str) -> RunSpec:
    return RunSpec("populate_world", world_id)


def day_run(world_id: str, day: date = DAY) -> RunSpec:
    return RunSpec("daily_posts", f"{day.isoformat()}|{world_id}")


class Bench:
    """The test bed, the run workers and the audit, shared by the scenarios."""

    def __init__(self, plan: Plan, stack: Stack, pool: RunPool, env: Mapping[str, str]) -> None:
        self.plan = plan
        self.stack = stack
        self.pool = pool
        self.env = env
        self.config = run_config(plan)
        self.http = httpx.Client(base_url=env["GENERIA_STACK_URL"], timeout=30.0)

    def run(self, tasks: Sequence[Sequence[RunSpec]]) -> tuple[float, float, float, list[RunStats]]:
        """Run the tasks; wall time, pipeline CPU, stack CPU and every run's stats."""
        stack0 = self.stack.cpu_s()
        wall, results = self.pool.run(tasks, self.config, self.plan.timeout_s)
        stack_cpu = self.stack.cpu_s() - stack0
        stats = [run for task in results for run in task]
        failed = [f"{s.job} {s.partition}: {s.error}" for s in stats if not s.success]
        if failed or len(stats) != sum(len(task) for task in tasks):
            raise AuditError(f"{len(failed)} runs failed: {failed[:5]}")
        return wall, sum(s.cpu_s for s in stats), stack_cpu, stats

    def audit(self, worlds: Mapping[str, WorldSize], days: int) -> None:
        """Exactly the asked-for characters and posts on the platform, paid once each."""
        from generia_pipelines.ledger import Ledger

        problems = []
        with Ledger(self.env["GENERIA_LEDGER_URL"]) as ledger:
            for world_id, size in worlds.items():
                made = len(self.http.get(f"/_admin/worlds/{world_id}/characters").json())
                posted = len(self.http.get(f"/_admin/worlds/{world_id}/posts").json())
                paid = sum(
                    1
                    for kind in ("avatars", "posts")
                    for unit in ledger.units(world_id, kind)
                    if unit.media_id or unit.image is not None
                )
                want = size.characters + size.posts * days
                if (made, posted, paid) != (size.characters, size.posts * days, want):
                    problems.append(
                        f"{world_id}: {made} characters, {posted} posts, {paid} images paid; "
                        f"want {size.characters}, {size.posts * days}, {want}"
                    )
            duplicates = ledger.duplicates()
        if duplicates:
            problems.append(f"{len(duplicates)} duplicates in the ledger: {duplicates[:3]}")
        if problems:
            raise AuditError("; ".join(problems[:5]))

    def scenario(
        self,
        name: str,
        worlds: Mapping[str, WorldSize],
        tasks: Sequence[Sequence[RunSpec]],
        work: Sequence[Sequence[RunWork]],
        *,
        days: int = 1,
        new_characters: bool = True,
    ) -> Scenario:
        wall, cpu, stack_cpu, stats = self.run(tasks)
        self.audit(worlds, days)
        characters = sum(s.characters for s in worlds.values()) if new_characters else 0
        posts = sum(s.posts for s in worlds.values()) * days
        return Scenario(
            name,
            len(worlds),
            characters,
            posts,
            wall,
            len(stats),
            cpu,
            stack_cpu,
            bound=scenario_bound(work, self.plan.latency, self.plan.limits),
            slowest_runs=[
                {
                    "run": f"{s.job} {s.partition}",
                    "wall_s": round(s.wall_s, 2),
                    "first_step_s": round(s.first_step_s, 2),
                    "steps_s": {key: round(sec, 2) for key, sec in s.steps},
                }
                for s in sorted(stats, key=lambda s: s.wall_s, reverse=True)[:3]
            ],
        )


def one_world(bench: Bench) -> Scenario:
    size = bench.plan.one
    worlds = {"one-world": size}
    return bench.scenario(
        "one world",
        worlds,
        [[setup_run("one-world"), day_run("one-world")]],
        [[RunWork(characters=size.characters), RunWork(posts=size.posts)]],
    )


def backfill(bench: Bench) -> Scenario:
    size = bench.plan.backfill
    worlds = {f"fill-{i:03d}": size for i in range(bench.plan.backfill_worlds)}
    return bench.scenario(
        f"backfill of {len(worlds)} new worlds",
        worlds,
        [[setup_run(w), day_run(w)] for w in worlds],
        [[RunWork(characters=size.characters), RunWork(posts=size.posts)] for _ in worlds],
    )


def refresh_worlds(plan: Plan) -> dict[str, WorldSize]:
    return {f"daily-{i:03d}": plan.refresh for i in range(plan.refresh_worlds)}


def refresh(bench: Bench) -> Scenario:
    """Setup was done earlier at zero latency; this times the day's runs only."""
    worlds = refresh_worlds(bench.plan)
    result = bench.scenario(
        f"daily refresh of {len(worlds)} worlds",
        worlds,
        [[day_run(w)] for w in worlds],
        [[RunWork(posts=s.posts)] for s in worlds.values()],
        new_characters=False,
    )
    return result


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


@dataclass
class Overhead:
    """Zero-latency figures: the pipeline's own cost."""

    cpu_ms_per_item: float
    setup_cpu_ms_per_item: float
    post_cpu_ms_per_item: float
    run_cpu_ms: float
    run_wall_ms: float
    first_step_warm_ms: float
    first_step_cold_ms: float
    detail: dict[str, Any] = field(default_factory=dict)


def overhead(bench: Bench) -> Overhead:
    """CPU per item as the slope between a small and a large world; fixed cost per run."""
    plan = bench.plan
    sizes = {"cpu-small": plan.overhead_small, "cpu-large": plan.overhead_large}
    by_world: dict[str, list[RunStats]] = {}
    for world_id in sizes:  # one at a time: each run's CPU is its own
        _, _, _, stats = bench.run([[setup_run(world_id), day_run(world_id)]])
        by_world[world_id] = stats
    bench.audit(sizes, 1)
    small, large = by_world["cpu-small"], by_world["cpu-large"]
    d_chars = 2 * (plan.overhead_large.characters - plan.overhead_small.characters)
    d_posts = plan.overhead_large.posts - plan.overhead_small.posts
    setup_slope = (large[0].cpu_s - small[0].cpu_s) / max(1, d_chars)
    post_slope = (large[1].cpu_s - small[1].cpu_s) / max(1, d_posts)
    items = d_chars + d_posts
    slope = (large[0].cpu_s + large[1].cpu_s - small[0].cpu_s - small[1].cpu_s) / max(1, items)
    # A run with nothing left to do: what every run costs before its first item.
    repeats = [bench.run([[day_run("cpu-large")]])[3][0] for _ in range(5)]
    repeats.sort(key=lambda s: s.wall_s)
    median = repeats[len(repeats) // 2]
    cold = cold_first_step(bench.env, day_run("cpu-large"), bench.config)
    return Overhead(
        cpu_ms_per_item=1000 * slope,
        setup_cpu_ms_per_item=1000 * setup_slope,
        post_cpu_ms_per_item=1000 * post_slope,
        run_cpu_ms=1000 * median.cpu_s,
        run_wall_ms=1000 * median.wall_s,
        first_step_warm_ms=1000 * median.first_step_s,
        first_step_cold_ms=1000 * cold,
        detail={
            "runs": {w: [asdict(s) for s in stats] for w, stats in by_world.items()},
            "noop_runs": [asdict(s) for s in repeats],
        },
    )


def cold_first_step(env: Mapping[str, str], spec: RunSpec, config: Mapping[str, Any]) -> float:
    """Launch to first step in a fresh process, as a run launcher's new run worker pays it."""
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


# -- the run ---------------------------------------------------------------------------------


def warm_up_tasks(index: int) -> list[RunSpec]:
    world_id = f"warm-{index:02d}"
    return [setup_run(world_id), day_run(world_id)]


def catalog(plan: Plan, workers: int) -> list[dict[str, Any]]:
    entries: list[tuple[str, WorldSize]] = [
        (f"warm-{i:02d}", WorldSize(2, 2)) for i in range(workers)
    ]
    entries += [("cpu-small", plan.overhead_small), ("cpu-large", plan.overhead_large)]
    entries += [("one-world", plan.one)]
    entries += [(f"fill-{i:03d}", plan.backfill) for i in range(plan.backfill_worlds)]
    entries += list(refresh_worlds(plan).items())
    return [world_entry(w, size, i) for i, (w, size) in enumerate(entries)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument(
        "--scenarios",
        default="overhead,one,naive,backfill,refresh",
        help="comma-separated subset of overhead,one,naive,backfill,refresh (default: all)",
    )
    parser.add_argument(
        "--latency", default="", help="e.g. text=0.4,image=1,grpc=0.005,upload=0.02"
    )
    parser.add_argument("--runs", type=int, default=None, help="runs at once (default 8)")
    parser.add_argument("--images-per-run", type=int, default=None)
    parser.add_argument("--texts-per-run", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None, help="pixels (default 128)")
    parser.add_argument("--naive-posts", type=int, default=None, help="naive sample size")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
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
    if opts.image_size:
        plan = replace(plan, image_size=opts.image_size)
    if opts.naive_posts is not None:
        plan = replace(plan, naive=replace(plan.naive, posts=opts.naive_posts))
    chosen = [s.strip() for s in opts.scenarios.split(",") if s.strip()]
    unknown = set(chosen) - {"overhead", "one", "naive", "backfill", "refresh"}
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}")

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


def run_all(plan: Plan, chosen: Sequence[str], keep_db: bool) -> dict[str, Any]:
    report: dict[str, Any] = {
        "machine": machine(),
        "latency_s": asdict(plan.latency),
        "limits": asdict(plan.limits),
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
            bench = Bench(plan, stack, pool, env)
            warm = pool.each_worker(warm_up_tasks, bench.config, plan.timeout_s)
            failed = [s for runs in warm for s in runs if not s.success]
            if failed:
                raise AuditError(f"warm-up runs failed: {failed[:2]}")
            report["workers_ready_s"] = round(time.perf_counter() - started, 1)
            if "overhead" in chosen:
                report["overhead"] = asdict(overhead(bench))
            if "refresh" in chosen:  # set the refresh worlds up before latency goes on
                worlds = refresh_worlds(plan)
                bench.run([[setup_run(w)] for w in worlds])
            stack.set_latency(plan.latency)
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
            if "backfill" in chosen:
                scenarios.append(backfill(bench))
            if "refresh" in chosen:
                scenarios.append(refresh(bench))
            for scenario in scenarios:
                if naive_times is not None:
                    setup, per_character, per_post = naive_times
                    new_worlds = scenario.worlds if scenario.characters else 0
                    scenario.naive_s = (
                        new_worlds * setup
                        + scenario.characters * per_character
                        + scenario.posts * per_post
                    )
                    scenario.naive_measured = (
                        scenario.name == "one world" and plan.naive == plan.one
                    )
                report["scenarios"].append(scenario.row())
        finally:
            if pool is not None:
                pool.close()
            stack.close()
    return report


def _add_partitions(world_ids: Sequence[str]) -> None:
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("worlds", list(world_ids))


def print_report(report: Mapping[str, Any]) -> None:
    lat = report["latency_s"]
    lim = report["limits"]
    print(
        f"\nlatency: text {lat['text']} s, image {lat['image']} s, gRPC {lat['grpc']} s, "
        f"upload {lat['upload']} s; limits: {lim['runs']} runs at once, "
        f"{lim['images_per_run']} images and {lim['texts_per_run']} texts in flight per run; "
        f"images {report['image_size']} px"
    )
    header = (
        f"{'scenario':<34}{'items':>7}{'runs':>6}{'wall s':>9}{'items/s':>9}{'bound s':>9}"
        f"{'× bound':>9}{'naive s':>9}{'× faster':>9}{'CPU ms/item':>12}  bound set by"
    )
    print(header)
    print("-" * len(header))
    for row in report["scenarios"]:
        naive_s = row.get("naive_s")
        naive_cell = (
            "" if naive_s is None else f"{naive_s:.0f}" + ("" if row["naive_measured"] else "*")
        )
        print(
            f"{row['scenario']:<34}{row['items']:>7}{row['runs']:>6}{row['wall_s']:>9.1f}"
            f"{row['items_per_s']:>9.1f}{row.get('bound_s', 0):>9.1f}"
            f"{row.get('ratio_to_bound', 0):>9.2f}{naive_cell:>9}"
            f"{row.get('speedup_vs_naive', 0):>9.1f}{row['pipeline_cpu_ms_per_item']:>12.1f}"
            f"  {row.get('bound_by', '')}"
        )
    if any(not row.get("naive_measured", True) for row in report["scenarios"]):
        print("* naive time scaled from the measured per-item times of the naive run")
    if "naive_per_item_s" in report:
        print(f"naive, measured: {report['naive_per_item_s']}")
    if "overhead" in report:
        o = report["overhead"]
        print(
            f"overhead at zero latency: {o['cpu_ms_per_item']:.2f} ms CPU per item "
            f"(setup {o['setup_cpu_ms_per_item']:.2f}, posts {o['post_cpu_ms_per_item']:.2f}); "
            f"a run with nothing to do: {o['run_cpu_ms']:.0f} ms CPU, {o['run_wall_ms']:.0f} ms "
            f"wall; launch to first step {o['first_step_warm_ms']:.0f} ms warm, "
            f"{o['first_step_cold_ms']:.0f} ms in a fresh process"
        )


if __name__ == "__main__":
    sys.exit(main())
