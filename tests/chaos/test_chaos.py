"""Chaos suite at CI size: worlds populated through the real jobs while every dependency fails.

Two runs, each once per module (see ``chaos_harness`` for the faults and the audit): one on a
platform that honours idempotency keys, where every exactly-once property must hold, and one
on a platform that ignores them, where lost responses do create duplicates, which the audit
must count and the run log must name. The figures are printed at the end of the session.
"""

from __future__ import annotations

import pytest
from chaos_harness import ChaosConfig, ChaosReport, fault_rates, record_report, run_chaos

#: Small enough for CI (about half a minute per run on two cores), faulty enough to matter.
HONOURED = ChaosConfig(worlds=2, characters=4, posts=6, days=1, rate=0.12, seed=11)
#: The same platform ignoring idempotency keys, with more lost responses so duplicates occur.
IGNORED = ChaosConfig(
    worlds=2,
    characters=4,
    posts=6,
    days=1,
    rate=0.1,
    seed=5,
    honour_idempotency=False,
    overrides=(("grpc_lost_response", 0.3),),
)


@pytest.fixture(scope="module")
def honoured(tmp_path_factory: pytest.TempPathFactory) -> ChaosReport:
    report = run_chaos(HONOURED, tmp_path_factory.mktemp("chaos-honoured"), say=print)
    record_report("idempotency keys honoured", report)
    return report


@pytest.fixture(scope="module")
def ignored(tmp_path_factory: pytest.TempPathFactory) -> ChaosReport:
    report = run_chaos(IGNORED, tmp_path_factory.mktemp("chaos-ignored"), say=print)
    record_report("idempotency keys ignored", report)
    return report


def test_faults_hit_every_kind_of_dependency(honoured: ChaosReport) -> None:
    injected = honoured.figures["faults_injected"]
    assert injected["grpc_errors"] and injected["grpc_lost_responses"]
    assert injected["delayed_calls"]
    assert injected["store_5xx_or_truncated"]
    assert injected["runware_errors"] + injected["runware_drops"] + injected["runware_garbage"]
    assert sum(v for k, v in injected.items() if k.startswith("text_"))
    assert honoured.figures["step_retries"] + honoured.figures["failed_runs"] > 0


def test_every_partition_is_done_within_the_rounds(honoured: ChaosReport) -> None:
    assert honoured.figures["all_runs_succeeded"], honoured.table()


def test_characters_and_posts_are_exactly_at_target(honoured: ChaosReport) -> None:
    figures = honoured.figures
    assert figures["characters_by_world"] == dict.fromkeys(HONOURED.world_ids, 4)
    assert set(figures["posts_by_world_day"].values()) == {6}
    assert len(figures["posts_by_world_day"]) == HONOURED.worlds * HONOURED.days


def test_nothing_is_duplicated(honoured: ChaosReport) -> None:
    figures = honoured.figures
    assert figures["duplicate_characters"] == 0
    assert figures["duplicate_posts"] == 0
    assert figures["ledger_duplicates"] == 0
    assert honoured.duplicates == []


def test_every_image_is_confirmed_and_its_owners(honoured: ChaosReport) -> None:
    assert honoured.figures["posts_with_bad_image"] == 0
    assert honoured.figures["characters_without_confirmed_avatar"] == 0


def test_no_image_is_paid_twice_and_costs_match(honoured: ChaosReport) -> None:
    figures = honoured.figures
    assert figures["images_paid_twice"] == 0, figures["paid_twice_tasks"]
    assert figures["paid_twice_tasks"] == []
    assert figures["costs_match"], (figures["cost_ledger_usd"], figures["cost_reported_usd"])


def test_orphan_uploads_are_counted_and_listed(honoured: ChaosReport) -> None:
    figures = honoured.figures
    assert figures["orphan_uploads"] == len(honoured.orphans)
    assert sum(figures["orphans_by_state"].values()) == len(honoured.orphans)
    # With keys honoured nothing confirmed goes unused: orphans are abandoned presigns.
    assert "confirmed" not in figures["orphans_by_state"]
    for orphan in honoured.orphans:
        kind = "avatars" if orphan["media_type"] == "avatar" else "posts"
        assert orphan["unit"].startswith(f"{kind}/chaos-w")


def test_the_report_passes_as_a_whole(honoured: ChaosReport) -> None:
    assert honoured.violations() == [], honoured.table()


def test_ignored_keys_duplicates_are_counted_and_named_in_the_log(ignored: ChaosReport) -> None:
    figures = ignored.figures
    assert figures["all_runs_succeeded"], ignored.table()
    excess_characters = sum(figures["characters_by_world"].values()) - 2 * 4
    excess_posts = sum(figures["posts_by_world_day"].values()) - 2 * 6
    # Lost responses on a platform that ignores the keys do make duplicates...
    assert figures["duplicate_characters"] + figures["duplicate_posts"] > 0, ignored.table()
    # ...each counted by the audit...
    assert figures["duplicate_characters"] == excess_characters
    assert figures["duplicate_posts"] == excess_posts
    # ...and each named, by its unit key, in a "suspected duplicate" warning of the run log.
    assert figures["duplicates_unlogged"] == []
    for duplicate in ignored.duplicates:
        assert duplicate["logged"], duplicate
        assert any(duplicate["unit"] in m for m in ignored.suspected[duplicate["unit"]])


def test_ignored_keys_still_pay_each_image_once(ignored: ChaosReport) -> None:
    figures = ignored.figures
    assert figures["images_paid_twice"] == 0, figures["paid_twice_tasks"]
    assert figures["costs_match"]
    # The orphaned duplicate characters have no avatar; every kept one has its own.
    assert figures["characters_without_confirmed_avatar"] == figures["duplicate_characters"]


def test_the_harness_refuses_bad_rates_and_unknown_faults() -> None:
    assert fault_rates(0.1, {"runware_drop": 0.0})["runware_drop"] == 0.0
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="within"):
            fault_rates(bad)
    with pytest.raises(ValueError, match="unknown fault kinds"):
        fault_rates(0.1, {"runware_explodes": 0.5})
