"""A run killed with SIGKILL mid-step, then re-executed from failure: exactly once, paid once.

Everything is real: the local Generia stack and the Runware stand-in on port 0, a persistent
Dagster instance (SQLite storage, compute logs) under a temporary ``DAGSTER_HOME``, and the
code location's ``daily_posts`` job run in a child process (``run_generia_job.py``). The
child is killed while a step is half done, Dagster is told the run failed (as run monitoring
would), and the run is re-executed from failure the Dagster way. The platform must end with
exactly the target number of posts and characters, and Runware must have been paid exactly
once per image.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus

from generia_pipelines.ledger import Ledger, Stage, Unit
from generia_pipelines.local.runware_standin import RunwareComponent
from generia_pipelines.local.stack import StackConfig, ThreadedStack

WORLD_ID = "salt-harbor"
CHARACTERS = 3
POSTS = 6
#: Server-side latency of the calls the kill lands in: far longer than the test waits.
HANG_S = 25.0
#: Bound on every wait: a child run, a ledger state, a process exit.
WAIT_S = 45.0
SCRIPT = Path(__file__).resolve().parent / "run_generia_job.py"

DAGSTER_YAML = """\
storage:
  sqlite:
    base_dir: {home}/storage
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home}/compute_logs
telemetry:
  enabled: false
"""


@dataclass
class Site:
    """The stack, the instance's home and the environment the child runs see."""

    home: Path
    stack: ThreadedStack
    runware: RunwareComponent
    ledger_url: str
    env: dict[str, str]

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.home))

    def images(self) -> int:
        """Images the Runware stand-in generated (and charged for) so far."""
        assert self.runware.standin is not None
        return self.runware.standin.stats.images_generated

    def start(self, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        """Start the job script in a child process; its output goes to the returned log file."""
        path = self.home / f"child-{uuid.uuid4().hex[:8]}.log"
        with path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, str(SCRIPT), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
            )
        return proc, path

    def run(self, *args: str) -> str:
        """Run the job script to completion (bounded); return the run id it printed."""
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            env=self.env,
            capture_output=True,
            timeout=WAIT_S,
            cwd=self.home,
            check=False,
        )
        output = proc.stdout.decode(errors="replace")
        assert proc.returncode == 0, f"{args} failed:\n{output[-3000:]}\n{proc.stderr[-3000:]!r}"
        return output.strip().splitlines()[-1]

    def platform(self, what: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.stack.http_url}/_admin/worlds/{WORLD_ID}/{what}", timeout=10)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()
        return items

    def day_units(self, day: str) -> list[Unit]:
        with Ledger(self.ledger_url) as ledger:
            return ledger.units(WORLD_ID, "posts", day)


def _hermetic_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any pipeline setting, plus ``extra``."""
    prefixes = ("GENERIA_", "RUNWARE_", "DAGSTER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A stack, a DAGSTER_HOME and a world already set up by a child ``populate_world`` run."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(DAGSTER_YAML.format(home=home))
    worlds_file = home / "worlds.yaml"
    worlds_file.write_text(
        yaml.safe_dump(
            {
                "worlds": [
                    {
                        "id": WORLD_ID,
                        "prompt": "A salt-crusted harbour of ropewalks, gulls and tide clocks",
                        "characters": CHARACTERS,
                        "posts_per_day": POSTS,
                    }
                ]
            }
        )
    )
    runware = RunwareComponent()
    stack = ThreadedStack(StackConfig(data_dir=home / "stack"), [runware]).start()
    try:
        unused = ("GENERIA_WORLD_ADDR", "GENERIA_STACK_URL")  # the catalog is the file
        stack_env = {k: v for k, v in stack.env.items() if k not in unused}
        ledger_url = f"sqlite:///{home / 'ledger.sqlite'}"
        env = _hermetic_env(
            {
                **stack_env,
                "DAGSTER_HOME": str(home),
                "GENERIA_WORLDS_FILE": str(worlds_file),
                "GENERIA_LEDGER_URL": ledger_url,
                "GENERIA_TEXT_BACKEND": "local",
            }
        )
        made = Site(home, stack, runware, ledger_url, env)
        with made.instance() as instance:
            instance.add_dynamic_partitions("worlds", [WORLD_ID])
        made.run("run", "populate_world", WORLD_ID, str(uuid.uuid4()))
        assert made.images() == CHARACTERS  # one avatar each
        yield made
    finally:
        stack.stop()


def _wait_for(
    what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Poll ``check`` until true; fail, showing the child's output, if it ends or time runs out."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{tail}")
        try:
            if check():
                return
        except sa.exc.OperationalError:
            pass  # the child holds the ledger's write lock: look again
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:]
    pytest.fail(f"timed out after {WAIT_S:g}s waiting until {what}:\n{tail}")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child (no cleanup, no run-failure event) and reap it, bounded."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _killed_mid_step(
    site: Site, day: str, condition: str, check: Callable[[list[Unit]], bool]
) -> str:
    """Start ``daily_posts`` for ``day``, SIGKILL it once ``check(units)``; return its run id."""
    run_id = str(uuid.uuid4())
    proc, log = site.start("run", "daily_posts", f"{day}|{WORLD_ID}", run_id)
    try:
        _wait_for(condition, lambda: check(site.day_units(day)), proc, log)
    finally:
        _kill(proc)
    assert proc.returncode == -signal.SIGKILL  # it was killed mid-run, not finished
    with site.instance() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.STARTED  # nobody said it ended
        # What run monitoring does for a dead worker: mark the run failed, so it can resume.
        instance.report_run_failed(run, message="the run worker was killed (SIGKILL)")
        failed = instance.get_run_by_id(run_id)
        assert failed is not None and failed.status == DagsterRunStatus.FAILURE
    site.stack.faults.clear()
    return run_id


def _reexecute(site: Site, parent_id: str, day: str) -> set[str]:
    """Re-execute ``parent_id`` from failure in a child process; return the steps it ran."""
    new_id = site.run("reexecute", "daily_posts", parent_id)
    with site.instance() as instance:
        run = instance.get_run_by_id(new_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert run.parent_run_id == parent_id and run.root_run_id == parent_id
        assert run.tags["dagster/partition"] == f"{day}|{WORLD_ID}"
        materialized = {
            event.asset_materialization.asset_key
            for event in instance.all_logs(new_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
            if event.asset_materialization is not None
        }
        assert AssetKey("posts") in materialized
        steps = {stat.step_key for stat in instance.get_run_step_stats(new_id)}
    captured = list((site.home / "compute_logs").rglob(f"*{new_id}*"))
    assert captured, "compute logs are on: the re-execution's logs must be captured"
    return steps


def _assert_exactly_once(site: Site, day: str, images_before: int) -> None:
    """The day's posts exist once each, the world has its characters once, images paid once."""
    units = site.day_units(day)
    assert len(units) == POSTS and all(u.status is Stage.CREATED for u in units)
    day_posts = {u.post_id for u in units}
    assert len(day_posts) == POSTS

    posts = site.platform("posts")
    ids = [p["post_id"] for p in posts]
    assert len(ids) == len(set(ids))
    assert day_posts <= set(ids)
    media = [p["media_id"] for p in posts]
    assert len(media) == len(set(media)), "a post was created twice for one image"
    with Ledger(site.ledger_url) as ledger:
        recorded = {u.post_id for u in ledger.units(WORLD_ID, "posts") if u.post_id}
        assert set(ids) == recorded  # nothing on the platform the ledger does not know
        assert ledger.duplicates(WORLD_ID) == []

    characters = site.platform("characters")
    assert len(characters) == CHARACTERS
    assert len({c["id"] for c in characters}) == CHARACTERS

    assert site.images() - images_before == POSTS  # every post image paid exactly once


def test_killed_while_confirming_uploads(site: Site) -> None:
    """Killed while confirming uploads: paid images reused, half-confirmed uploads resumed."""
    day = "2026-11-21"
    before = site.images()
    # Half of the confirms hang on the server, so the step cannot finish before the kill.
    site.stack.faults.set("ConfirmUpload", latency_s=HANG_S, times=POSTS // 2)

    def half_confirmed(units: list[Unit]) -> bool:
        confirmed = sum(u.reached(Stage.CONFIRMED) for u in units)
        uploaded = sum(u.reached(Stage.UPLOADED) for u in units)
        return len(units) == POSTS and uploaded == POSTS and confirmed == POSTS - POSTS // 2

    parent = _killed_mid_step(site, day, "half the uploads are confirmed", half_confirmed)
    assert site.images() - before == POSTS  # all paid for before the kill
    # Each post is published as soon as its image is confirmed: only those can be out, and
    # the kill may land after the platform created one but before the ledger recorded it
    # (the re-execution's idempotency key then gets the same post back, checked below).
    published = [u for u in site.day_units(day) if u.done]
    assert all(u.reached(Stage.CONFIRMED) for u in published)
    assert len(published) <= len(site.platform("posts")) <= POSTS - POSTS // 2

    steps = _reexecute(site, parent, day)
    assert steps == {"day_posts"}  # the day's one step, resuming from the ledger
    _assert_exactly_once(site, day, before)


def test_killed_while_publishing(site: Site) -> None:
    """Killed in ``posts`` with half the posts created: the rest created, none twice."""
    day = "2026-11-22"
    before = site.images()
    published_before = len(site.platform("posts"))
    site.stack.faults.set("CreateAIPost", latency_s=HANG_S, times=POSTS // 2)

    def half_published(units: list[Unit]) -> bool:
        return len(units) == POSTS and sum(u.done for u in units) == POSTS - POSTS // 2

    parent = _killed_mid_step(site, day, "half the posts are created", half_published)
    assert len(site.platform("posts")) - published_before == POSTS - POSTS // 2

    steps = _reexecute(site, parent, day)
    assert steps == {"day_posts"}  # the day's one step: drafts and images reused, none paid
    _assert_exactly_once(site, day, before)
