"""Exactly-once on every launch path, with real processes: concurrent runs, SIGKILLs, an outage.

The machinery is ``bench/exactly_once.py``'s (one local stack and Runware stand-in in this
process, warm job processes running ``execute_in_process`` on a persistent instance), at a
small size, on SQLite and on PostgreSQL. Short leases (``GENERIA_LEASE_TTL_S=5``,
``GENERIA_LEASE_WAIT_S=60``) keep a waiting run from being slow. Behaviour is asserted, never
timings: how long an outage takes to fail is a figure of ``bench/exactly_once.py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from exactly_once import Bed, Launcher, Plan, Runner, Trial, ledger_url, postgres_problem

PLAN = Plan(
    characters=2,
    posts=3,
    concurrent_rounds=1,
    kill_trials=3,
    latency_s=(0.2, 0.5),
    run_timeout_s=150.0,
    seed=5,
)
LEASES = {"GENERIA_LEASE_TTL_S": "5", "GENERIA_LEASE_WAIT_S": "60"}


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bed, Launcher]]:
    made = Bed(tmp_path_factory.mktemp("exactly_once"), PLAN, LEASES)
    try:
        root = Path(__file__).resolve().parents[2]
        yield made, made.launcher(root, "tests")
    finally:
        made.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def runner(request: pytest.FixtureRequest, bed: tuple[Bed, Launcher]) -> Iterator[Runner]:
    backend = request.param
    if backend == "postgresql":
        problem = postgres_problem()
        if problem:
            if os.environ.get("CI"):
                pytest.fail(f"{problem} (CI must provide PostgreSQL on 127.0.0.1:5432)")
            pytest.skip(problem)
    made_bed, launcher = bed
    name = request.node.name.split("[")[0].removeprefix("test_")[:12]
    tag = f"t{backend[0]}"
    made = Runner(made_bed, launcher, backend, tag)
    with ledger_url(backend, made_bed.root, f"{tag}-{name}") as url:
        made.url = url
        made.prepare_day_world()
        yield made


def assert_exact(trial: Trial) -> None:
    """Complete, exactly the target on the platform, every image billed once."""
    summary = f"{trial.scenario} {trial.kind} {trial.world} {trial.day}: {trial.errors[:2]}"
    assert trial.complete, summary
    assert trial.extra_characters == 0 and trial.extra_posts == 0, summary
    assert trial.duplicate_slots == 0, summary
    assert trial.billed == trial.needed, summary
    assert trial.detail.get("reservations_open", 0) == 0, summary


def test_concurrent_runs_of_one_world_and_one_day_are_exact(runner: Runner) -> None:
    runner.plan = replace(
        PLAN, concurrent_shapes=(("setup", 2), ("setup", 3), ("day", 2), ("day", 3))
    )
    trials = runner.concurrent()
    assert [(t.kind, t.launches) for t in trials] == [
        ("setup", 2),
        ("setup", 3),
        ("day", 2),
        ("day", 3),
    ]
    for trial in trials:
        assert_exact(trial)
        # Every launch ran to success: a waiting run finds the unit done, it does not fail.
        assert trial.detail["launched_ok"] == trial.launches, trial.errors


def test_sigkill_at_a_random_moment_then_a_rerun_is_exact(runner: Runner) -> None:
    trials = runner.sigkill()  # seeded: setup and day alternate, kill moments vary
    assert len(trials) == PLAN.kill_trials
    assert sum(t.runs_killed for t in trials) >= 1  # some kill landed mid-run
    for trial in trials:
        assert_exact(trial)
    # A kill between Runware's billing and the ledger's write is resumed, not paid again.
    resumed = [t for t in trials if t.detail["kill_mode"] in ("billed", "delivered")]
    for trial in resumed:
        if trial.runs_killed:
            assert trial.conflicts >= 1 and trial.get_responses >= 1, trial.detail


def test_runware_outage_fails_naming_it_spends_nothing_and_recovery_completes(
    runner: Runner,
) -> None:
    runner.plan = replace(PLAN, outage_kinds=("setup", "day"))
    trials = runner.outage()
    assert len(trials) == 2
    for trial in trials:
        detail = trial.detail
        assert detail["outage_run_failed"], detail
        # How long it took is the bench's figure (bench/exactly_once.py), not asserted here.
        assert detail["outage_names_runware"], detail["outage_error"]
        assert detail["outage_spent_images"] == 0, detail
        assert detail["outage_billed"] == 0, detail
        assert detail["recovery_completed"], trial.errors
        assert_exact(trial)
