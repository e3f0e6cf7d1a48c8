"""The harness's test bed: the stack process, a fresh PostgreSQL database, DAGSTER_HOME, the
worlds file's entries and the runs' resource config (``bench/harness.py`` uses them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from bound import Latency, Limits

HERE = Path(__file__).resolve().parent
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


class AuditError(AssertionError):
    """The platform or the ledger is not what the scenario should have left."""


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


def run_config(limits: Limits, image_size: int) -> dict[str, Any]:
    """Per-run resource settings: a run's share of the limits in force and the image size."""
    # Run config replaces a resource's whole configuration, so everything the environment set
    # is passed again (by variable name: the key never appears in the run's config).
    text: dict[str, Any] = {"max_concurrency": limits.texts_per_run}
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
                    "width": image_size,
                    "height": image_size,
                    "concurrency": limits.images_per_run,
                }
            },
            "text": {"config": text},
        },
    }
