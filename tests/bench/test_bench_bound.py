"""The critical-path bound of bench/bound.py, on workloads small enough to reason about."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bound import Latency, Limits, RunWork, naive_seconds, run_bound, scenario_bound

LAT = Latency(text=0.4, image=1.0, grpc=0.005, upload=0.02)
AFTER_IMAGE = 3 * 0.005 + 0.02


def test_a_single_post_takes_its_chain_of_calls() -> None:
    bound = run_bound(RunWork(posts=1), LAT, Limits())
    assert bound.seconds == pytest.approx(0.4 + 1.0 + AFTER_IMAGE)
    assert bound.binding in {"critical path", "image calls"}


def test_a_day_of_posts_is_bound_by_image_waves() -> None:
    # 150 images, 10 at a time: 15 waves of one second after the first draft
    bound = run_bound(RunWork(posts=150), LAT, Limits(images_per_run=10))
    assert bound.binding == "image calls"
    assert bound.seconds == pytest.approx(0.4 + 15 * 1.0 + AFTER_IMAGE)


def test_setup_chains_the_character_plans() -> None:
    # 25 characters: brief, three plans in a chain, a profile, create, avatar prompt, image
    bound = run_bound(RunWork(characters=25), LAT, Limits(images_per_run=100, texts_per_run=100))
    assert bound.binding == "critical path"
    assert bound.seconds == pytest.approx(6 * 0.4 + 0.005 + 1.0 + AFTER_IMAGE)


def test_text_calls_bind_when_text_is_the_narrow_limit() -> None:
    bound = run_bound(RunWork(posts=100), LAT, Limits(texts_per_run=1, images_per_run=100))
    assert bound.binding == "text calls"
    assert bound.seconds == pytest.approx(100 * 0.4 + 1.0 + AFTER_IMAGE)


def test_a_world_runs_its_runs_one_after_another() -> None:
    setup, day = RunWork(characters=5), RunWork(posts=10)
    alone = run_bound(setup, LAT, Limits()).seconds + run_bound(day, LAT, Limits()).seconds
    assert scenario_bound([[setup, day]], LAT, Limits()).seconds == pytest.approx(alone)


def test_many_worlds_share_the_run_slots() -> None:
    day = RunWork(posts=10)
    one = run_bound(day, LAT, Limits()).seconds
    bound = scenario_bound([[day]] * 80, LAT, Limits(runs=8))
    assert bound.binding == "run slots"
    assert bound.seconds == pytest.approx(10 * one)
    # fewer worlds than slots: the slowest world sets the bound
    assert scenario_bound([[day]] * 3, LAT, Limits(runs=8)).seconds == pytest.approx(one)


def test_the_naive_way_adds_every_call() -> None:
    seconds = naive_seconds([[RunWork(posts=2)]], LAT)
    assert seconds == pytest.approx(2 * (0.4 + 1.0 + 3 * 0.005 + 0.02))
    assert scenario_bound([], LAT, Limits()).seconds == 0.0


def test_the_account_bound_shares_the_account_between_all_worlds() -> None:
    from bound import Account, account_bound

    # 200 worlds × 10 posts, 80 images in flight in all: 25 waves after the first draft
    bound = account_bound([[RunWork(posts=10)]] * 200, LAT, Account(images=80, texts=128))
    assert bound.binding == "image calls"
    assert bound.seconds == pytest.approx(0.4 + 25 * 1.0 + AFTER_IMAGE)
    # the same work as one run per world-day is bound by its run slots instead
    assert scenario_bound([[RunWork(posts=10)]] * 200, LAT, Limits()).binding == "run slots"


def test_the_account_bound_lets_one_world_use_the_whole_account() -> None:
    from bound import Account, account_bound

    setup, day = RunWork(characters=25), RunWork(posts=150)
    bound = account_bound([[setup, day]], LAT, Account(images=80, texts=128))
    assert bound.binding == "slowest world"
    # the setup's chain (brief, three plans, profile, create, prompt, image) then two waves
    # of posts' images after their drafts
    whole = Limits(runs=1, texts_per_run=128, images_per_run=80, grpc_per_run=800)
    expected = run_bound(setup, LAT, whole).seconds + run_bound(day, LAT, whole).seconds
    assert bound.seconds == pytest.approx(expected)


def test_an_account_split_over_runs_keeps_the_sum_within_it() -> None:
    from bound import Account

    account = Account(images=80, texts=128)
    assert account.per_run(8) == Limits(
        runs=8, texts_per_run=16, images_per_run=10, grpc_per_run=100
    )
    assert account.per_run(4).images_per_run == 20 and account.per_run(1).texts_per_run == 128
