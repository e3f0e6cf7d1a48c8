"""bench/scale.py's shared parts: figures and problems, timing helpers, the fresh database,
DAGSTER_HOME, the code snapshot and the generated worlds file."""

from __future__ import annotations

import contextlib
import cProfile
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
import yaml

ROOT = Path(__file__).resolve().parents[1]
LOCATION = "generia_pipelines"
REPOSITORY = "__repository__"
SCHEDULE = "daily_posts_schedule"
SENSOR = "new_worlds_sensor"
DAILY_ASSETS = ("post_drafts", "post_images", "posts")
SETUP_ASSETS = ("world_brief", "characters", "character_avatars")
#: The steps that make them (one multi-asset each).
DAILY_STEP, SETUP_STEP = "day_posts", "world_setup"
SENSOR_BACKFILL_DAYS = 7
PG_HOST, PG_PORT, PG_USERS = "127.0.0.1", 5432, ("postgres", "root")
QUERY_TIMEOUT_S = 600.0
#: Dagster's variable for bulk-inserting a batch of events (read at every event).
EVENT_BATCH_VAR = "DAGSTER_EVENT_BATCH_SIZE"

T = TypeVar("T")


# --- figures and problems ------------------------------------------------------------------


@dataclass
class Figure:
    """One measured time; ``first`` is the cold call when ``seconds`` is a median of reps."""

    section: str
    measure: str
    seconds: float
    first: float | None = None
    reps: int = 1
    count: int | None = None
    note: str = ""


@dataclass
class Report:
    """Figures to print and problems that make the run fail."""

    figures: list[Figure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(f"  {figure.section:<9} {figure.measure:<52} {figure.seconds:9.3f} s", flush=True)
        return figure

    def expect(self, ok: bool, problem: str) -> bool:
        """Record ``problem`` unless ``ok``; the run then exits non-zero."""
        if not ok:
            self.problems.append(problem)
            print(f"  PROBLEM: {problem}", flush=True)
        return ok

    def table(self) -> str:
        header = ("section", "measure", "first s", "median s", "reps", "count", "note")
        rows = [
            (
                f.section,
                f.measure,
                "" if f.first is None else f"{f.first:.3f}",
                f"{f.seconds:.3f}",
                str(f.reps),
                "" if f.count is None else str(f.count),
                f.note,
            )
            for f in self.figures
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        rule = "  ".join("-" * w for w in widths)
        head = "  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))
        return "\n".join([head, rule, *lines])


@dataclass(frozen=True)
class Settings:
    """How to measure: warm repetitions, cProfile output, the daemons' submit threads."""

    reps: int
    profile: Path | None
    submit_workers: int  # 0: the daemons' default, one run after the other
    #: DAGSTER_EVENT_BATCH_SIZE in the daemon for the sensor ticks (0: unset).
    event_batch: int = 100

    @property
    def submission(self) -> str:
        if not self.submit_workers:
            return "runs submitted serially (daemon default)"
        return f"{self.submit_workers} submit threads (use_threads, num_submit_workers)"


def clock(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def repeated(fn: Callable[[], T], reps: int) -> tuple[float, float, T]:
    """(first call, median of ``reps`` further calls, last result): cold and warm figures."""
    first, value = clock(fn)
    warm = []
    for _ in range(reps):
        seconds, value = clock(fn)
        warm.append(seconds)
    return first, statistics.median(warm) if warm else first, value


@contextlib.contextmanager
def profiled(directory: Path | None, name: str) -> Iterator[None]:
    """cProfile the block into ``directory/name.prof`` when profiling is on."""
    if directory is None:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        directory.mkdir(parents=True, exist_ok=True)
        profile.dump_stats(directory / f"{name}.prof")


# --- the environment: database, DAGSTER_HOME, worlds file ----------------------------------


def _admin_connection() -> tuple[Any, str]:
    """An autocommit connection to the server's ``postgres`` database, and its user."""
    errors = []
    for user in PG_USERS:
        try:
            conn = psycopg2.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname="postgres", connect_timeout=10
            )
        except psycopg2.OperationalError as exc:
            errors.append(f"{user}: {exc}".strip())
            continue
        conn.autocommit = True
        return conn, user
    raise SystemExit(f"cannot reach PostgreSQL on {PG_HOST}:{PG_PORT}: {'; '.join(errors)}")


@contextlib.contextmanager
def fresh_database(keep: bool) -> Iterator[tuple[str, str]]:
    """A new empty database ``(user, name)``, dropped on exit unless ``keep``."""
    name = f"generia_bench_scale_{os.getpid()}"
    conn, user = _admin_connection()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    try:
        yield user, name
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            conn, _ = _admin_connection()
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.close()


@dataclass(frozen=True)
class Layout:
    """Where this run's files are, and the simulated day."""

    root: Path
    home: Path
    worlds_file: Path
    workspace_file: Path
    tick: datetime  # the schedule's tick: 06:00 UTC today
    days: tuple[date, ...]  # the date partitions, oldest first; the last is yesterday
    database: str = ""  # the PostgreSQL database of this run

    @property
    def last_day(self) -> date:
        """The day the tick requests."""
        return self.days[-1]

    @property
    def past_days(self) -> tuple[date, ...]:
        """The days made before the tick."""
        return self.days[:-1]


def prepare(root: Path, user: str, database: str, days: int) -> Layout:
    """Write dagster.yaml, workspace.yaml and point the environment at them.

    Runs before anything imports generia_pipelines: the date partitions are built at import
    from GENERIA_POSTS_START_DATE. The tick is today's 06:00 UTC, so the date partitions end
    yesterday for this process, the code servers and the webserver alike: exactly ``days``.
    """
    code = snapshot_code(root)
    home = root / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    database_config = {
        "hostname": PG_HOST,
        "port": PG_PORT,
        "username": user,
        "password": "",
        "db_name": database,
        "scheme": "postgresql+psycopg2",
    }
    # Either one ``storage: postgres:`` block or a block per storage (as deploy/dagster.yaml
    # names the pooled storages): every ``postgres_db`` gets this run's database.
    blocks = [config["storage"]["postgres"]] if "storage" in config else []
    blocks += [
        config[name]["config"]
        for name in ("run_storage", "event_log_storage", "schedule_storage")
        if name in config
    ]
    if not blocks:
        raise RuntimeError("deploy/dagster.yaml configures no PostgreSQL storage")
    for block in blocks:
        block["postgres_db"] = dict(database_config)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    workspace = root / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_module": {
                            "module_name": "generia_pipelines.definitions",
                            "working_directory": str(code),
                            "location_name": LOCATION,
                        }
                    }
                ]
            }
        )
    )
    today = datetime.now(UTC).date()
    all_days = tuple(today - timedelta(days=back) for back in range(days, 0, -1))
    os.environ.update(
        {
            "DAGSTER_HOME": str(home),
            "GENERIA_WORLDS_FILE": str(root / "worlds.yaml"),
            "GENERIA_POSTS_START_DATE": all_days[0].isoformat(),
            "GENERIA_BACKFILL_DAYS": "0",
            # Resolved when the daemon builds a run's execution plan; nothing calls Runware.
            "RUNWARE_API_KEY": "bench-placeholder",
        }
    )
    os.environ.pop("GENERIA_WORLD_ADDR", None)  # the catalog is the worlds file
    tick = datetime(today.year, today.month, today.day, 6, tzinfo=UTC)
    return Layout(root, home, root / "worlds.yaml", workspace, tick, all_days, database)


def snapshot_code(root: Path) -> Path:
    """Copy the package so this process, the code servers and the webserver run one version.

    A full run lasts an hour and starts code servers along the way: edits to the working
    tree in the meantime would otherwise be measured half-way. PYTHONPATH and sys.path put
    the copy ahead of the editable install.
    """
    code = root / "code"
    shutil.copytree(
        ROOT / "generia_pipelines",
        code / "generia_pipelines",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    sys.path.insert(0, str(code))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(code), os.environ.get("PYTHONPATH")) if part
    )
    return code


def world_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{index:04d}" for index in range(count)]


def write_worlds(path: Path, ids: Sequence[str]) -> None:
    """A worlds file the sensor reads; rewritten in place, the catalog re-reads it."""
    worlds = [
        {
            "id": world_id,
            "name": world_id.replace("-", " ").title(),
            "prompt": f"A benchmark world numbered {world_id}, full of harbours and markets",
            "characters": 8,
            "posts_per_day": 10,
        }
        for world_id in ids
    ]
    path.write_text(yaml.safe_dump({"worlds": worlds}, sort_keys=False))
