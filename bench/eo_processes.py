"""Job processes for ``bench/exactly_once.py``: warm children, their launcher, the killer.

A :class:`Child` is one ``tests/crash/exactly_once_job.py`` process, imported and waiting for
its command; a :class:`Launcher` keeps spares of them ahead of need for one code root; the
:class:`Killer` SIGKILLs an armed child from inside the Runware stand-in. :func:`frozen_pipeline`
copies this checkout's pipeline so that edits made while the bench runs cannot reach its jobs.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
JOB_SCRIPT = ROOT / "tests" / "crash" / "exactly_once_job.py"
TAKEOVER_LINE = re.compile(r"took over from run")


@dataclass
class Outcome:
    """One run: how it ended."""

    job: str
    partition: str
    success: bool = False
    killed: bool = False
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    killed_at_s: float | None = None
    kill_mode: str = ""
    takeovers_logged: int = 0
    module: str = ""


class Child:
    """A warm job process: imported, waiting for its command."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher = launcher
        self.id = uuid.uuid4().hex[:10]
        self.log = launcher.logs / f"run-{self.id}.log"
        self.result = launcher.logs / f"run-{self.id}.json"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(JOB_SCRIPT)],
                env=launcher.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=launcher.cwd,
            )
        self.ready = False
        self.started = 0.0
        self.command: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        if self.ready:
            return
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(max(0.01, deadline - time.monotonic())):
                    break
                line = self.proc.stdout.readline()
                if not line:
                    break
                if line.startswith(b"EO-READY"):
                    self.ready = True
                    return
        self.stop()
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"a job process did not become ready in {timeout_s:g} s:\n{tail}")

    def go(self, job: str, partition: str, env: dict[str, str], run_config: dict[str, Any]) -> None:
        self.wait_ready()
        self.command = {
            "job": job,
            "partition": partition,
            "run_id": str(uuid.uuid4()),
            "env": env,
            "run_config": run_config,
            "result": str(self.result),
        }
        assert self.proc.stdin is not None
        self.started = time.monotonic()
        self.proc.stdin.write((json.dumps(self.command) + "\n").encode())
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> bool:
        """SIGKILL it (no cleanup at all) if still running; True if this killed it."""
        if self.proc.poll() is not None:
            return False
        os.kill(self.proc.pid, signal.SIGKILL)
        return True

    def wait(self, timeout_s: float) -> Outcome:
        """Its outcome; a run past ``timeout_s`` is killed and reported failed."""
        outcome = Outcome(self.command.get("job", ""), self.command.get("partition", ""))
        try:
            self.proc.wait(timeout=max(0.0, timeout_s - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait(timeout=15)
            outcome.errors = [f"timed out after {timeout_s:g} s (killed by the bench)"]
        outcome.elapsed_s = time.monotonic() - self.started
        if self.proc.returncode == -signal.SIGKILL and not outcome.errors:
            outcome.killed = True
        if self.result.exists():
            answer = json.loads(self.result.read_text())
            outcome.success = bool(answer["success"])
            outcome.errors = list(answer["errors"])
            outcome.module = str(answer.get("module", ""))
        elif not outcome.killed and not outcome.errors:
            tail = self.log.read_text(errors="replace")[-1500:]
            outcome.errors = [f"exit {self.proc.returncode} without a result: {tail}"]
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        outcome.takeovers_logged = len(TAKEOVER_LINE.findall(text))
        self._close_pipes()
        return outcome

    def stop(self) -> None:
        """End a process that was never given a command (or hangs), bounded."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
                self.proc.wait(timeout=10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


class Launcher:
    """Warm job processes for one code root: spares are started ahead of need."""

    def __init__(self, env: dict[str, str], cwd: Path, logs: Path, spares: int = 3) -> None:
        self.env, self.cwd, self.logs = env, cwd, logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.spares = spares
        self.idle: list[Child] = []
        self.children: list[Child] = []
        self.refill()

    def refill(self) -> None:
        while len(self.idle) < self.spares:
            child = Child(self)
            self.children.append(child)
            self.idle.append(child)

    def take(self, count: int = 1) -> list[Child]:
        while len(self.idle) < count:
            child = Child(self)
            self.children.append(child)
            self.idle.append(child)
        taken, self.idle = self.idle[:count], self.idle[count:]
        for child in taken:
            child.wait_ready()
        self.refill()
        return taken

    def close(self) -> None:
        for child in self.children:
            child.stop()
        self.idle.clear()


class Killer:
    """SIGKILLs an armed child from inside the stand-in, at the moment an image is billed
    (before its answer leaves) or right after its answer left (before the ledger write)."""

    def __init__(self, standin: Any) -> None:
        self.lock = threading.Lock()
        self.child: Child | None = None
        self.mode = ""
        self.left = 0
        self.fired_at: float | None = None
        stats = standin.stats
        bump, delivery = stats.bump, stats.record_delivery

        def hooked_bump(name: str, amount: float = 1) -> None:
            bump(name, amount)
            if name == "images_generated":
                self._hit("billed")

        def hooked_delivery(*args: Any) -> None:
            delivery(*args)
            self._hit("delivered")

        stats.bump = hooked_bump
        stats.record_delivery = hooked_delivery

    def arm(self, child: Child, mode: str, nth: int) -> None:
        with self.lock:
            self.child, self.mode, self.left, self.fired_at = child, mode, nth, None

    def disarm(self) -> float | None:
        with self.lock:
            fired, self.child, self.mode = self.fired_at, None, ""
            return fired

    def _hit(self, mode: str) -> None:
        with self.lock:
            if self.child is None or self.mode != mode:
                return
            self.left -= 1
            if self.left > 0:
                return
            if self.child.kill():
                self.fired_at = time.monotonic() - self.child.started
            self.child = None


def frozen_pipeline(root: Path) -> Path:
    """A frozen copy of this checkout's pipeline under ``root``: edits made while the bench
    runs (a schema change, a half-saved module) cannot reach its job processes."""
    snapshot = root / "current"
    shutil.copytree(
        ROOT / "generia_pipelines",
        snapshot / "generia_pipelines",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return snapshot
