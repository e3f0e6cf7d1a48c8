"""The code location deployed as in production, driven through the webserver's GraphQL API.

``live`` is ``dagster-webserver`` and ``dagster-daemon`` on ``deploy/dagster.yaml`` (PostgreSQL
storage, queued runs, pools, run retries; no per-world run limit, the ledger's claims keep
exactly-once) with the Helm values' event batch size, the code location as its own gRPC code
server, and the local Generia stack as the platform; every process runs with K=2 partitions
per run (GENERIA_PARTITIONS_PER_RUN), so a few worlds already make several range runs. Every
test uses worlds of its own and checks the outcome twice: on the platform (exact counts,
nothing twice, nothing paid twice) and in Dagster (runs, partitions, asset checks). The
schedule's test has a deployment of its own, as the schedule takes every world there is.
"""

from __future__ import annotations

import math
import re
import signal
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dagster import AssetKey, DagsterEventType
from deploy_helpers import (
    BATCH_K,
    FINISHED,
    Deployment,
    batched_env,
    daemons_healthy,
    deployment,
    max_overlap,
    report,
    require_postgres,
    wait_for,
)

from generia_pipelines.assets.posts import world_days
from generia_pipelines.ledger import Ledger

CHARACTERS = 3
POSTS_PER_DAY = 3
SETUP_ASSETS = ("world_brief", "characters", "character_avatars")
DAILY_ASSETS = ("post_drafts", "post_images", "posts")
#: The setup assets share one step, as do the daily assets, so that each character or post
#: moves on as soon as its stage is done.
SETUP_STEPS = ("world_setup",)
DAILY_STEPS = ("day_posts",)
#: The steps in the Runware pool (deploy/dagster.yaml pools; the assets' ``pool=``).
RUNWARE_STEPS = {"world_setup", "day_posts"}
RUNWARE_LIMIT = 2
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


def assert_checks_passed(
    live: Deployment, assets: Iterable[str], partitions_of: Mapping[str, Sequence[str]]
) -> None:
    """Every asset check of ``assets`` ran once for each partition of each run (run id → its
    partitions) and passed."""
    wanted = sorted((run_id, key) for run_id, keys in partitions_of.items() for key in keys)
    for asset in assets:
        for check in live.asset_checks(asset):
            executions = [
                e for e in live.check_executions(asset, check) if e["runId"] in partitions_of
            ]
            got = sorted((e["runId"], e["partition"]) for e in executions)
            assert got == wanted, (asset, check)
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
def test_backfills_of_worlds_and_days_run_as_concurrent_range_runs_exactly_once(
    live: Deployment,
) -> None:
    worlds = [f"backfill-{n}" for n in (1, 2, 3)]
    days = past_days(2)
    live.add_worlds([world(w) for w in worlds])
    live.add_world_partitions(worlds)
    live.set_pool_limit("runware", RUNWARE_LIMIT)
    assert live.pool_limit("runware") == RUNWARE_LIMIT
    paid_before = live.images_paid

    # Uploads confirm slowly (as over a real network), so that runs and steps overlap: a
    # worker process takes ~2 s to start on two cores, longer than a small world's work.
    live.stack.faults.set("ConfirmUpload", latency_s=CONFIRM_LATENCY_S)
    try:
        began = time.monotonic()
        # No run limit holds a world's posts behind its setup any more: the days are
        # backfilled once the worlds are set up, as the sensor requests them. The setup is a
        # job backfill ("Launch backfill" of populate_world); of the days, the first is an
        # asset backfill (selected partitions of the daily assets), the second a job
        # backfill of daily_posts, side by side.
        setup = live.launch_backfill("populate_world", worlds)
        wait_backfills(live, [setup], BACKFILL_BOUND_S)
        by_asset = [f"{days[0]}|{w}" for w in worlds]
        by_job = [f"{days[1]}|{w}" for w in worlds]
        day_keys = by_asset + by_job
        daily_assets = live.launch_asset_backfill(DAILY_ASSETS, by_asset)
        daily_job = live.launch_backfill("daily_posts", by_job)
        wait_backfills(live, [daily_assets, daily_job], BACKFILL_BOUND_S)
        wall_s = time.monotonic() - began
    finally:
        live.stack.faults.clear("ConfirmUpload")

    # Dagster: the backfill policy cut each backfill into runs of at most K partitions that
    # cover every partition once; all succeeded, every asset materialized once, checks passed.
    setup_runs = live.runs({"dagster/backfill": setup})
    job_runs = live.runs({"dagster/backfill": daily_job})
    daily_runs = live.runs({"dagster/backfill": daily_assets}) + job_runs
    runs = setup_runs + daily_runs
    assert all(r["status"] == "SUCCESS" for r in runs), [(r["runId"], r["status"]) for r in runs]
    partitions_of = {r["runId"]: live.run_partitions(r["runId"]) for r in runs}
    assert all(1 <= len(keys) <= BATCH_K for keys in partitions_of.values()), partitions_of
    setup_of = {r["runId"]: partitions_of[r["runId"]] for r in setup_runs}
    daily_of = {r["runId"]: partitions_of[r["runId"]] for r in daily_runs}
    assert sorted(k for keys in setup_of.values() for k in keys) == sorted(worlds)
    assert sorted(k for keys in daily_of.values() for k in keys) == sorted(day_keys)
    assert len(setup_runs) == math.ceil(len(worlds) / BATCH_K)
    assert len(job_runs) == math.ceil(len(by_job) / BATCH_K)
    assert len(daily_runs) == 2 * math.ceil(len(worlds) / BATCH_K)
    assert_materialized_once(live, SETUP_ASSETS, worlds)
    # Dagster also tags a job backfill's range runs with the first partition's
    # dagster/partition/date and /world tags, and context.partition_keys prefers them to the
    # range; the step reads the range tags (batch.run_partition_keys), so each run works and
    # reports every world-day it planned, not the backfill's first one alone.
    assert_materialized_once(live, DAILY_ASSETS, day_keys)
    assert_checks_passed(live, SETUP_ASSETS, setup_of)
    assert_checks_passed(live, DAILY_ASSETS, daily_of)

    # The platform: exact counts, nothing twice, every image paid for once.
    for world_id in worlds:
        assert_world_populated(live, world_id, days=len(days))
    expected_images = len(worlds) * (CHARACTERS + POSTS_PER_DAY * len(days))
    assert live.images_paid - paid_before == expected_images

    # The queue and the pool: range runs of a backfill run side by side, and the Runware
    # pool caps their steps however many worlds each serves.
    windows = {r["runId"]: live.run_window(r["runId"]) for r in runs}
    in_flight = max_overlap((w[0], w[2]) for w in windows.values())
    executing = max_overlap((w[1], w[2]) for w in windows.values())
    runware_steps = step_overlap(live, windows, RUNWARE_STEPS)
    assert 1 < in_flight <= len(runs)
    assert runware_steps <= RUNWARE_LIMIT
    first = min(w[0] for w in windows.values())
    last = max(w[2] for w in windows.values())
    report(
        f"BACKFILL: {len(worlds)} worlds x {len(days)} days, K={BATCH_K}; {len(runs)} range "
        f"runs ({len(setup_runs)} populate_world job backfill + {len(daily_runs)} daily: asset "
        f"backfill of day 1, job backfill of day 2), all SUCCESS; wall {wall_s:.1f} s from "
        f"the first launch to all backfills "
        f"COMPLETED_SUCCESS (first run launched to last run ended: {last - first:.1f} s); runs "
        f"in flight at most {in_flight} (executing at once at most {executing}); runware steps "
        f"at once at most {runware_steps} (pool limit {RUNWARE_LIMIT}); images paid "
        f"{expected_images}"
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
    assert_checks_passed(live, SETUP_ASSETS, {run["runId"]: [new]})
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
    setup_keys = worlds + worlds
    daily_keys = [f"{day}|{w}" for w in worlds] * 2
    assert_checks_passed(
        live, SETUP_ASSETS, {r: [k] for r, k in zip(setup + again[:2], setup_keys, strict=True)}
    )
    assert_checks_passed(
        live, DAILY_ASSETS, {r: [k] for r, k in zip(daily + again[2:], daily_keys, strict=True)}
    )
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


def last_tick_before(now: datetime) -> datetime:
    """The daily schedule's latest tick (06:00 UTC) at or before ``now``."""
    tick = now.astimezone(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    return tick if tick <= now else tick - timedelta(days=1)


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A deployment of its own with GENERIA_PARTITIONS_PER_RUN=2 for the code server (which
    evaluates the schedule and the sensor) and everything else, so that a few worlds make
    several range runs and no other test's world joins them."""
    require_postgres()
    root = tmp_path_factory.mktemp("batched")
    with deployment(root, env=batched_env()) as running:
        yield running


@pytest.mark.timeout(480)
def test_schedule_batched_runs_through_the_daemon_mark_each_world_day_and_fail_one_alone(
    batched: Deployment,
) -> None:
    live = batched
    worlds = ["batch-1", "batch-2", "batch-broke", "batch-3", "batch-4"]
    broke = "batch-broke"
    # An empty daily image budget stops the world's day at its first image; setup has none.
    live.add_worlds(
        [world(w, budget={"daily": {"images": 0}}) if w == broke else world(w) for w in worlds]
    )
    good = [w for w in worlds if w != broke]
    expected_runs = math.ceil(len(worlds) / BATCH_K)
    paid_before = live.images_paid
    began = time.monotonic()

    # The sensor adds the worlds' partitions (in catalog order) and sets them up, K per run.
    try:
        assert live.sensor("new_worlds_sensor", start=True) == "RUNNING"

        def setup_done() -> list[dict[str, Any]] | None:
            runs = live.runs({"dagster/sensor_name": "new_worlds_sensor"})
            finished = [r for r in runs if r["status"] in FINISHED]
            return runs if len(finished) == expected_runs == len(runs) else None

        setup = wait_for("the sensor's setup runs", setup_done, 180, every_s=2.0)
    finally:
        assert live.sensor("new_worlds_sensor", start=False) == "STOPPED"
    assert all(r["status"] == "SUCCESS" for r in setup), live.logs()
    assert_materialized_once(live, SETUP_ASSETS, worlds)
    setup_s = time.monotonic() - began

    # The schedule's tick, evaluated by the daemon: started while the daemon is down and made
    # to look started just before the latest 06:00 UTC, the restarted daemon catches that
    # tick up at once (as after an outage) instead of waiting for tomorrow's.
    tick = last_tick_before(datetime.now(UTC))
    day = (tick.date() - timedelta(days=1)).isoformat()
    live.service("daemon").stop()
    try:
        assert live.schedule("daily_posts_schedule", start=True) == "RUNNING"
        live.backdate_schedule("daily_posts_schedule", tick.timestamp() - 60)
    finally:
        live.start_daemon()
    began = time.monotonic()
    try:

        def schedule_done() -> list[dict[str, Any]] | None:
            runs = live.runs({"dagster/schedule_name": "daily_posts_schedule"})
            finished = [r for r in runs if r["status"] in FINISHED]
            return runs if len(finished) == len(runs) >= expected_runs else None

        runs = wait_for("the schedule's runs", schedule_done, 240, every_s=2.0)
    finally:
        assert live.schedule("daily_posts_schedule", start=False) == "STOPPED"
    posts_s = time.monotonic() - began

    # ceil(worlds / K) runs: two ranges of two worlds, then one world as a partition run.
    assert len(runs) == expected_runs, [r["tags"] for r in runs]
    by_span = {r["tags"].get("generia/worlds") or r["tags"].get("generia/world"): r for r in runs}
    assert set(by_span) == {"batch-1..batch-2", "batch-broke..batch-3", "batch-4"}, by_span
    for span, first, last in (
        ("batch-1..batch-2", "batch-1", "batch-2"),
        ("batch-broke..batch-3", broke, "batch-3"),
    ):
        tags = by_span[span]["tags"]
        assert tags["dagster/asset_partition_range_start"] == f"{day}|{first}", tags
        assert tags["dagster/asset_partition_range_end"] == f"{day}|{last}", tags
        assert "dagster/partition" not in tags
    assert by_span["batch-4"]["tags"]["dagster/partition"] == f"{day}|batch-4"
    statuses = {span: r["status"] for span, r in by_span.items()}
    assert statuses == {
        "batch-1..batch-2": "SUCCESS",
        "batch-broke..batch-3": "FAILURE",
        "batch-4": "SUCCESS",
    }, (statuses, live.logs())

    # Per-partition status in the instance: the broke world's day FAILED, its neighbour in
    # the same run and every other world's day MATERIALIZED, for each daily asset.
    keys = [f"{day}|{w}" for w in worlds]
    good_keys = {f"{day}|{w}" for w in good}
    run_ids = [r["runId"] for r in runs]
    with live.instance() as instance:
        for asset in DAILY_ASSETS:
            status = instance.get_status_by_partition(AssetKey(asset), keys, world_days)
            assert status is not None, asset
            assert {k: v.value if v else None for k, v in status.items()} == {
                k: "MATERIALIZED" if k in good_keys else "FAILED" for k in keys
            }, asset
        evaluations: dict[tuple[str, str, str], bool] = {}
        for run_id in run_ids:
            records = instance.get_records_for_run(
                run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=10_000
            ).records
            for record in records:
                event = record.event_log_entry.dagster_event
                assert event is not None
                data = event.asset_check_evaluation_data
                key = (data.asset_key.to_user_string(), data.check_name, str(data.partition))
                assert key not in evaluations, f"{key} evaluated twice"
                evaluations[key] = data.passed
    # Each good world-day materialized once, and every check of it evaluated once, passed.
    assert_materialized_once(live, DAILY_ASSETS, sorted(good_keys))
    expected_checks = {
        (asset, check, key)
        for asset in DAILY_ASSETS
        for check in live.asset_checks(asset)
        for key in good_keys
    }
    assert expected_checks, "the daily assets have no checks"
    assert set(evaluations) == expected_checks
    assert all(evaluations.values()), {k: v for k, v in evaluations.items() if not v}

    # The platform: exactly the good worlds' posts, each once; none for the broke world.
    for world_id in good:
        assert_world_populated(live, world_id, days=1)
    assert live.platform(broke, "posts") == []
    assert len(live.platform(broke, "characters")) == CHARACTERS
    assert live.images_paid - paid_before == len(worlds) * CHARACTERS + len(good) * POSTS_PER_DAY
    report(
        f"BATCHED SCHEDULE: {len(worlds)} worlds, K={BATCH_K}; the sensor set them up in "
        f"{len(setup)} range runs ({setup_s:.1f} s); the daemon's tick of {tick:%Y-%m-%d %H:%M} "
        f"UTC made {len(runs)} daily_posts runs for {day} ({posts_s:.1f} s from the daemon's "
        f"restart to all finished); {broke}'s day FAILED alone (empty image budget), the "
        f"{len(good)} others MATERIALIZED with their checks passed"
    )
