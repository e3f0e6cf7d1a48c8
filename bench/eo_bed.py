"""The test bed of ``bench/exactly_once.py``: its sizes, the stack, the ledgers.

:class:`Plan` holds the bench's sizes; :class:`Bed` is one local Generia stack and Runware
stand-in (in this process), one ``DAGSTER_HOME`` and the worlds catalog, with the platform and
stand-in figures the audit reads. The ledger helpers give each scenario a fresh SQLite file or
PostgreSQL database and read what a ledger says of a world's period.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import yaml
from eo_processes import Killer, Launcher

PG_ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
START_DATE = date(2026, 1, 1)
DAGSTER_YAML = """\
storage:
  sqlite:
    base_dir: {home}/storage
telemetry:
  enabled: false
"""


@dataclass(frozen=True)
class Plan:
    """Sizes of the bench; the defaults are the full size."""

    characters: int = 3
    posts: int = 4
    #: Rounds of (2 and 3 launches) × (setup and world-day): 10 launches a round.
    concurrent_rounds: int = 2
    #: Concurrency trials of one round, as (job kind, simultaneous runs).
    concurrent_shapes: tuple[tuple[str, int], ...] = (
        ("setup", 2),
        ("setup", 3),
        ("day", 2),
        ("day", 3),
    )
    kill_trials: int = 100
    outage_kinds: tuple[str, ...] = ("setup", "day")
    invalid_faults: tuple[str, ...] = ("garbage_next", "wrong_size_next")
    latency_s: tuple[float, float] = (0.3, 1.0)
    image_px: int = 128
    images_per_run: int = 4
    run_timeout_s: float = 240.0
    outage_bound_s: float = 120.0
    max_reruns: int = 4
    seed: int = 11


SMOKE = Plan(
    characters=2,
    posts=3,
    concurrent_rounds=1,
    concurrent_shapes=(("setup", 2), ("day", 3)),
    kill_trials=4,
    outage_kinds=("setup",),
    invalid_faults=("garbage_next",),
    latency_s=(0.2, 0.4),
)


# -- the test bed -----------------------------------------------------------------------------


class Bed:
    """One stack and Runware stand-in, one DAGSTER_HOME, the worlds catalog, the audit."""

    def __init__(self, root: Path, plan: Plan, lease_env: dict[str, str]) -> None:
        from generia_pipelines.local.runware_standin import RunwareComponent
        from generia_pipelines.local.stack import StackConfig, ThreadedStack

        self.root, self.plan = root, plan
        self.home = root / "dagster_home"
        self.home.mkdir(parents=True)
        (self.home / "dagster.yaml").write_text(DAGSTER_YAML.format(home=self.home))
        self.worlds_file = root / "worlds.yaml"
        self.worlds: dict[str, dict[str, Any]] = {}
        self._write_worlds()
        self.runware = RunwareComponent(seed=plan.seed)
        self.stack = ThreadedStack(StackConfig(data_dir=root / "stack"), [self.runware]).start()
        assert self.runware.standin is not None
        self.standin = self.runware.standin
        self.killer = Killer(self.standin)
        self.http = httpx.Client(base_url=self.stack.http_url, timeout=30.0)
        unused = ("GENERIA_WORLD_ADDR", "GENERIA_STACK_URL")  # the catalog is the file
        prefixes = ("GENERIA_", "RUNWARE_", "DAGSTER_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        env.update({k: v for k, v in self.stack.env.items() if k not in unused})
        env.update(
            {
                "DAGSTER_HOME": str(self.home),
                "GENERIA_WORLDS_FILE": str(self.worlds_file),
                "GENERIA_TEXT_BACKEND": "local",
                "GENERIA_POSTS_START_DATE": START_DATE.isoformat(),
                # set per run (resolved at run time through EnvVar)
                "GENERIA_LEDGER_URL": "sqlite:///" + str(root / "unused.sqlite"),
                "PYTHONUNBUFFERED": "1",
                **lease_env,
            }
        )
        self.base_env = env
        self.runware_url = self.stack.env["RUNWARE_URL"]
        self.launchers: list[Launcher] = []
        self.rng = random.Random(plan.seed)
        self._instance_lock = threading.Lock()

    def launcher(self, code_root: Path, name: str) -> Launcher:
        env = {**self.base_env, "PYTHONPATH": str(code_root)}
        made = Launcher(env, self.home, self.root / "logs" / name)
        self.launchers.append(made)
        return made

    def close(self) -> None:
        for launcher in self.launchers:
            launcher.close()
        self.http.close()
        self.stack.stop()

    # -- worlds ------------------------------------------------------------------------------

    def _write_worlds(self) -> None:
        tmp = self.worlds_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump({"worlds": list(self.worlds.values())}, sort_keys=False))
        os.replace(tmp, self.worlds_file)

    def add_world(self, world_id: str) -> str:
        from dagster import DagsterInstance

        self.worlds[world_id] = {
            "id": world_id,
            "name": world_id.replace("-", " ").title(),
            "prompt": "A tidal market town of rope bridges, lantern boats and salt kilns",
            "characters": self.plan.characters,
            "posts_per_day": self.plan.posts,
        }
        self._write_worlds()
        with self._instance_lock, DagsterInstance.from_config(str(self.home)) as instance:
            instance.add_dynamic_partitions("worlds", [world_id])
        return world_id

    # -- runs --------------------------------------------------------------------------------

    def run_config(self) -> dict[str, Any]:
        text: dict[str, Any] = {"max_concurrency": 4}
        for name, variable in (("backend", "GENERIA_TEXT_BACKEND"),):
            text[name] = {"env": variable}
        return {
            "loggers": {"console": {"config": {"log_level": "INFO"}}},
            "resources": {
                "runware": {
                    "config": {
                        "api_key": {"env": "RUNWARE_API_KEY"},
                        "url": {"env": "RUNWARE_URL"},
                        "width": self.plan.image_px,
                        "height": self.plan.image_px,
                        "concurrency": self.plan.images_per_run,
                    }
                },
                "text": {"config": text},
            },
        }

    def set_latency(self) -> float:
        low, high = self.plan.latency_s
        latency = round(self.rng.uniform(low, high), 3)
        self.standin.faults.set(latency_s=latency)
        return latency

    def images(self) -> dict[str, int]:
        stats = self.standin.stats.snapshot()
        return {
            "billed": stats.images_generated,
            "conflicts": stats.conflicts,
            "get_responses": stats.get_responses,
        }

    def platform(self, world_id: str, what: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/_admin/worlds/{world_id}/{what}")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()
        return items


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- ledgers ----------------------------------------------------------------------------------


def postgres_problem() -> str | None:
    try:
        import psycopg2

        conn = psycopg2.connect(connect_timeout=3, **PG_ADMIN)
        conn.close()
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432 is unreachable ({type(exc).__name__}); skipped"
    return None


@contextmanager
def ledger_url(backend: str, root: Path, name: str) -> Iterator[str]:
    """A fresh ledger for one scenario: a SQLite file, or a PostgreSQL database (dropped)."""
    if backend == "sqlite":
        path = root / "ledgers" / f"{name}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{path}"
        return
    import psycopg2

    database = f"eo_{os.getpid()}_{name}".replace("-", "_").lower()[:60]

    def admin(sql: str) -> None:
        conn = psycopg2.connect(connect_timeout=10, **PG_ADMIN)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{database}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def ledger_figures(url: str, world_id: str, period: str | None) -> dict[str, Any]:
    """What the ledger says of a world's period (reservations, leases, duplicates, spend);
    tolerant of a ledger written by another revision (missing tables read as empty)."""
    import sqlalchemy as sa

    from generia_pipelines.ledger import Ledger, leases_table, reservations_table

    out: dict[str, Any] = {}
    try:
        with Ledger(url) as ledger:
            out["duplicates"] = len(ledger.duplicates(world_id))
            out["spent_images"] = ledger.spent(world_id, period).images
            engine = sa.create_engine(url)
            try:
                with engine.connect() as conn:
                    r = reservations_table
                    filters = [r.c.world_id == world_id]
                    if period is not None:
                        filters.append(r.c.period == period)
                    rows = conn.execute(sa.select(r.c.state, r.c.takeovers).where(*filters)).all()
                    out["reservations"] = len(rows)
                    out["reservations_resumed"] = sum(int(row.takeovers) for row in rows)
                    out["reservations_open"] = sum(1 for row in rows if row.state == "reserved")
                    leases = conn.execute(
                        sa.select(sa.func.count()).where(
                            leases_table.c.lease_key.contains(world_id)
                        )
                    ).scalar_one()
                    out["leases_left"] = int(leases)
            finally:
                engine.dispose()
    except Exception as exc:  # e.g. a revision without these tables
        out["ledger_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return out
