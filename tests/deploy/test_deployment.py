"""The code location deployed as in production, driven through the webserver's GraphQL API.

``live`` is ``dagster-webserver`` and ``dagster-daemon`` on ``deploy/dagster.yaml`` (PostgreSQL
storage, queued runs, one run per world, pools, run retries), the code location as its own
gRPC code server, and the local Generia stack as the platform. Every test uses worlds of its
own and checks the outcome twice: on the platform (exact counts, nothing twice, nothing paid
twice) and in Dagster (runs, partitions, asset checks).
"""

from __future__ import annotations

import re
import signal
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from deploy_helpers import Deployment, daemons_healthy, max_overlap, report, wait_for

from generia_pipelines.ledger import Ledger

CHARACTERS = 3
POSTS_PER_DAY = 3
SETUP_ASSETS = ("world_brief", "characters", "character_avatars")
DAILY_ASSETS = ("post_drafts", "post_images", "posts")
#: Characters and avatars share a step, as do the daily assets, so that each character or
#: post moves on as soon as its stage is done.
SETUP_STEPS = ("world_brief", "world_characters")
DAILY_STEPS = ("day_posts",)
#: The assets in the Runware pool (deploy/dagster.yaml pools; the assets' ``pool=``).
RUNWARE_STEPS = {"world_characters", "day_posts"}
RUNWARE_LIMIT = 2
TEXT_LIMIT = 3
BACKFILL_BOUND_S = 180
CONFIRM_LATENCY_S = 2.0


def world(world_id: str, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": world_id,
        "name": world_id.replace("-", " ").title(),
        "prompt": f"{world_id}: a tide-washed archipelago of lighthouse keepers and net menders",
        "characters": CHARACTERS,
        "posts_per_day": POSTS_PER_DAY,
    }
    spec.update(overrides)
    return spec


def past_days(count: int) -> list[str]:
    """The last ``count`` complete days (UTC), oldest first: the latest daily partitions."""
    today = datetime.now(UTC).date()
    return [(today - timedelta(days=back)).isoformat() for back in range(count, 0, -1)]


def assert_world_populated(live: Deployment, world_id: str, days: int) -> None:
    """The platform holds exactly the world's characters, avatars and posts, each once."""
    people = live.platform(world_id, "characters")
    assert len(people) == CHARACTERS, [p["display_name"] for p in people]
    assert all(p["is_ai"] and p["avatar_media_id"] for p in people)
    assert len({p["avatar_media_id"] for p in people}) == CHARACTERS
    published = live.platform(world_id, "posts")
    assert len(published) == POSTS_PER_DAY * days
    assert len({p["media_id"] for p in published}) == len(published), "an image posted twice"
    ids = {p["id"] for p in people}
    assert {p["character_id"] for p in published} <= ids
    with Ledger(live.ledger_url) as ledger:
        assert ledger.duplicates(world_id) == []


def assert_checks_passed(live: Deployment, assets: Iterable[str], run_ids: set[str]) -> None:
    """Every asset check of ``assets`` ran once in each of ``run_ids`` and passed."""
    for asset in assets:
        for check in live.asset_checks(asset):
            executions = [e for e in live.check_executions(asset, check) if e["runId"] in run_ids]
            assert sorted(e["runId"] for e in executions) == sorted(run_ids), (asset, check)
            failed = [e for e in executions if e["status"] != "SUCCEEDED"]
            assert not failed, (asset, check, failed)


def assert_materialized_once(live: Deployment, assets: Iterable[str], keys: list[str]) -> None:
    for asset in assets:
        assert sorted(live.materialized_partitions(asset, keys)) == sorted(keys), asset


def step_overlap(live: Deployment, run_ids: Iterable[str], steps: set[str]) -> int:
    """The most ``steps`` executing at once across the runs (from Dagster's step stats)."""
    spans = []
    for run_id in run_ids:
        for stat in live.run(run_id)["stepStats"]:
            if stat["stepKey"] in steps and stat["startTime"] and stat["endTime"]:
                spans.append((float(stat["startTime"]), float(stat["endTime"])))
    return max_overlap(spans)


def wait_backfills(live: Deployment, backfill_ids: Sequence[str], bound_s: float) -> None:
    def done() -> bool:
        statuses = [live.backfill(b)["status"] for b in backfill_ids]
        if any(s in {"FAILED", "CANCELED", "COMPLETED_FAILED"} for s in statuses):
            raise AssertionError(f"backfills {backfill_ids} ended {statuses}\n{live.logs()}")
        return all(s == "COMPLETED_SUCCESS" for s in statuses)

    try:
        wait_for(f"backfills {list(backfill_ids)}", done, bound_s, every_s=2.0)
    except TimeoutError:
        print(live.logs())
        raise


@pytest.mark.timeout(420)
def test_backfill_of_worlds_and_days_is_exactly_once_and_one_run_per_world(
    live: Deployment,
) -> None:
    worlds = [f"backfill-{n}" for n in (1, 2, 3)]
    days = past_days(2)
    live.add_worlds([world(w) for w in worlds])
    live.add_world_partitions(worlds)
    live.set_pool_limit("runware", RUNWARE_LIMIT)
    live.set_pool_limit("text_model", TEXT_LIMIT)
    assert live.pool_limit("runware") == RUNWARE_LIMIT
    assert live.pool_limit("text_model") == TEXT_LIMIT
    paid_before = live.images_paid

    # Uploads confirm slowly (as over a real network), so that runs and steps overlap: a
    # worker process takes ~2 s to start on two cores, longer than a small world's work.
    live.stack.faults.set("ConfirmUpload", latency_s=CONFIRM_LATENCY_S)
    try:
        began = time.monotonic()
        setup = live.launch_backfill("populate_world", worlds)

        def setup_queued() -> bool:
            results = live.backfill(setup)["partitionStatuses"]["results"]
            return all(r["runStatus"] not in (None, "NOT_STARTED") for r in results)

        # The day runs must queue behind the setup runs of their world: the world tag then
        # holds each world's posts until its characters exist.
        wait_for("setup runs queued", setup_queued, 60, every_s=1.0)
        day_keys = [f"{day}|{w}" for w in worlds for day in days]
        daily = live.launch_backfill("daily_posts", day_keys)
        wait_backfills(live, [setup, daily], BACKFILL_BOUND_S)
        wall_s = time.monotonic() - began
    finally:
        live.stack.faults.clear("ConfirmUpload")

    # Dagster: one successful run per partition, every asset materialized once, checks passed.
    setup_runs = live.runs({"dagster/backfill": setup})
    daily_runs = live.runs({"dagster/backfill": daily})
    assert sorted(r["tags"]["dagster/partition"] for r in setup_runs) == sorted(worlds)
    assert sorted(r["tags"]["dagster/partition"] for r in daily_runs) == sorted(day_keys)
    runs = setup_runs + daily_runs
    assert all(r["status"] == "SUCCESS" for r in runs), [(r["runId"], r["status"]) for r in runs]
    assert all(r["tags"]["generia/world"] in worlds for r in runs)
    assert_materialized_once(live, SETUP_ASSETS, worlds)
    assert_materialized_once(live, DAILY_ASSETS, day_keys)
    assert_checks_passed(live, SETUP_ASSETS, {r["runId"] for r in setup_runs})
    assert_checks_passed(live, DAILY_ASSETS, {r["runId"] for r in daily_runs})

    # The platform: exact counts, nothing twice, every image paid for once.
    for world_id in worlds:
        assert_world_populated(live, world_id, days=len(days))
    expected_images = len(worlds) * (CHARACTERS + POSTS_PER_DAY * len(days))
    assert live.images_paid - paid_before == expected_images

    # The queue: at most one run per world in flight (launch to end), setup before posts.
    windows = {r["runId"]: live.run_window(r["runId"]) for r in runs}
    by_world: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for r in runs:
        launched, _, ended = windows[r["runId"]]
        by_world[r["tags"]["generia/world"]].append((launched, ended, r["jobName"]))
    for world_id, spans in by_world.items():
        assert max_overlap((s, e) for s, e, _ in spans) == 1, (world_id, sorted(spans))
        setup_end = max(e for _, e, job in spans if job == "populate_world")
        assert all(s >= setup_end for s, _, job in spans if job == "daily_posts"), world_id
    in_flight = max_overlap((w[0], w[2]) for w in windows.values())
    executing = max_overlap((w[1], w[2]) for w in windows.values())
    runware_steps = step_overlap(live, windows, RUNWARE_STEPS)
    assert 1 < in_flight <= len(worlds)
    assert runware_steps <= RUNWARE_LIMIT
    first = min(w[0] for w in windows.values())
    last = max(w[2] for w in windows.values())
    report(
        f"BACKFILL: {len(worlds)} worlds x {len(days)} days; {len(runs)} runs "
        f"({len(setup_runs)} populate_world + {len(daily_runs)} daily_posts), all SUCCESS; "
        f"wall {wall_s:.1f} s from launch to both backfills COMPLETED_SUCCESS "
        f"(first run launched to last run ended: {last - first:.1f} s); "
        f"runs in flight at most {in_flight} (executing at once at most {executing}); "
        f"runware steps at once at most {runware_steps} (pool limit {RUNWARE_LIMIT}); "
        f"images paid {expected_images}"
    )


@pytest.mark.timeout(240)
def test_sensor_finds_a_new_catalog_world_and_populates_it(live: Deployment) -> None:
    new = "sensor-found"
    before = {r["runId"] for r in live.runs({})}
    live.add_worlds([world(new)])
    try:
        assert live.sensor("new_worlds_sensor", start=True) == "RUNNING"

        def setup_run() -> dict[str, Any] | None:
            runs = live.runs({"generia/world": new})
            return runs[0] if runs and runs[0]["status"] in {"SUCCESS", "FAILURE"} else None

        run = wait_for("the sensor's run for the new world", setup_run, 120, every_s=2.0)
    finally:
        assert live.sensor("new_worlds_sensor", start=False) == "STOPPED"
    assert run["status"] == "SUCCESS", live.logs()
    assert run["jobName"] == "populate_world"
    assert run["tags"]["dagster/sensor_name"] == "new_worlds_sensor"
    assert run["tags"]["dagster/partition"] == new
    assert_materialized_once(live, SETUP_ASSETS, [new])
    assert_checks_passed(live, SETUP_ASSETS, {run["runId"]})
    assert_world_populated(live, new, days=0)
    # Only the new world was requested: the worlds that already had a partition were left alone.
    added = [r for r in live.runs({}) if r["runId"] not in before]
    assert [r["tags"].get("generia/world") for r in added] == [new]


def _processes(live: Deployment, run_id: str) -> tuple[int, dict[str, int]]:
    """The run worker's pid and each step's process id, from the run's own events."""
    worker = None
    steps: dict[str, int] = {}
    for event in live.run_events(run_id):
        if event["__typename"] == "LogsCapturedEvent" and event.get("stepKeys"):
            for step in event["stepKeys"]:
                steps[step] = int(event["pid"])
        elif event["__typename"] == "EngineEvent" and worker is None:
            found = re.search(r"Started process for run \(pid: (\d+)\)", event["message"] or "")
            if found:
                worker = int(found.group(1))
    assert worker is not None, f"no run worker pid in the events of {run_id}"
    return worker, steps


MULTIPROCESS = {"execution": {"config": {"multiprocess": True}}}


def _run_all(live: Deployment, launches: Sequence[tuple[str, str]]) -> list[str]:
    """Launch every (job, partition) at once with the multiprocess executor; wait for all."""
    run_ids = [live.launch_run(job, key, MULTIPROCESS) for job, key in launches]
    for run_id in run_ids:
        assert live.wait_run(run_id, 150)["status"] == "SUCCESS", live.logs()
    return run_ids


@pytest.mark.timeout(300)
def test_multiprocess_executor_populates_worlds_across_processes_exactly_once(
    live: Deployment,
) -> None:
    worlds = ["multiproc-1", "multiproc-2"]
    (day,) = past_days(1)
    live.add_worlds([world(w) for w in worlds])
    live.add_world_partitions(worlds)
    paid_before = live.images_paid
    began = time.monotonic()

    setup = _run_all(live, [("populate_world", w) for w in worlds])
    daily = _run_all(live, [("daily_posts", f"{day}|{w}") for w in worlds])
    first_pass_s = time.monotonic() - began
    for world_id in worlds:
        assert_world_populated(live, world_id, days=1)
    assert live.images_paid - paid_before == len(worlds) * (CHARACTERS + POSTS_PER_DAY)

    workers: set[int] = set()
    step_pids: set[int] = set()
    for run_id in setup + daily:
        worker, steps = _processes(live, run_id)
        expected = SETUP_STEPS if run_id in setup else DAILY_STEPS
        assert set(steps) == set(expected), steps
        assert worker not in steps.values(), "a step ran in the run worker's own process"
        assert len(set(steps.values())) == len(expected), steps
        workers.add(worker)
        step_pids |= set(steps.values())
    assert len(workers) == len(setup + daily)
    assert len(step_pids) == len(SETUP_STEPS) * len(setup) + len(DAILY_STEPS) * len(daily)

    # The same runs again, in new processes: everything is reused, nothing made or paid twice.
    paid_before = live.images_paid
    again = _run_all(live, [("populate_world", w) for w in worlds])
    again += _run_all(live, [("daily_posts", f"{day}|{w}") for w in worlds])
    assert live.images_paid == paid_before
    for world_id in worlds:
        assert_world_populated(live, world_id, days=1)
    assert_checks_passed(live, SETUP_ASSETS, set(setup + again[:2]))
    assert_checks_passed(live, DAILY_ASSETS, set(daily + again[2:]))
    report(
        f"MULTIPROCESS: {len(worlds)} worlds, {len(setup + daily)} runs in "
        f"{first_pass_s:.1f} s across {len(workers)} run workers and {len(step_pids)} step "
        f"processes (forkserver); re-run of all {len(again)}: 0 new images, counts unchanged"
    )


@pytest.mark.timeout(300)
def test_a_run_in_flight_survives_a_daemon_crash_and_the_queue_resumes_after_restart(
    live: Deployment,
) -> None:
    slow, queued = "daemon-crash-1", "daemon-crash-2"
    live.add_worlds([world(slow), world(queued)])
    live.add_world_partitions([slow, queued])
    # Hold the first run inside its characters step long enough to kill the daemon under it.
    live.stack.faults.set("CreateCharacter", latency_s=8.0, times=CHARACTERS)
    try:
        in_flight = live.launch_run("populate_world", slow)
        wait_for(
            "the first run to start executing",
            lambda: live.run(in_flight)["status"] == "STARTED",
            60,
            every_s=0.5,
        )
        daemon = live.service("daemon")
        killed_at = time.time()
        daemon.stop(signal.SIGKILL)
        waiting = live.launch_run("populate_world", queued)

        finished = live.wait_run(in_flight, 90)
        ended_after_kill = float(finished["endTime"]) - killed_at
        assert finished["status"] == "SUCCESS", live.logs()
        assert ended_after_kill > 0, "the run had finished before the daemon was killed"
        # Nobody drains the queue while the daemon is down.
        assert live.run(waiting)["status"] == "QUEUED"

        restarted_at = time.time()
        live.start_daemon()
        resumed = live.wait_run(waiting, 120)
        assert resumed["status"] == "SUCCESS", live.logs()
        wait_for("daemons healthy again", lambda: daemons_healthy(live), 60, every_s=2.0)
    finally:
        live.stack.faults.clear("CreateCharacter")
        if "daemon" not in live.services or not live.service("daemon").alive():
            live.start_daemon()
    assert_world_populated(live, slow, days=0)
    assert_world_populated(live, queued, days=0)
    with Ledger(live.ledger_url) as ledger:
        assert ledger.duplicates() == []
    report(
        f"DAEMON RESTART: the daemon was SIGKILLed while run {in_flight[:8]} was executing; "
        f"the run kept going in its own process under the code server and ended SUCCESS "
        f"{ended_after_kill:.1f} s later; a run launched meanwhile stayed QUEUED until the "
        f"daemon was restarted and then ran ({float(resumed['endTime']) - restarted_at:.1f} s "
        "after the restart)"
    )
