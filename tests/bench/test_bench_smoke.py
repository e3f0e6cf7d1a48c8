"""The benchmark harness at its smoke size: every scenario runs and its audit passes.

No timing is asserted (this machine's speed is not the pipeline's behaviour); what is checked
is that the harness populates what it says, through the real jobs, and reports every figure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from smoke_helpers import run_smoke


@pytest.mark.timeout(600)
def test_harness_smoke_runs_every_scenario_in_both_modes(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    report, printed = run_smoke("harness.py", out)
    rows = {(row["scenario"], row["mode"]): row for row in report["scenarios"]}
    # smoke sizes (bench/harness.py SMOKE): 3 characters + 6 posts; 3 worlds of 2 + 4;
    # 6 set-up worlds × 3 posts; 8 set-up worlds × 3 posts; batched runs of K = 2
    assert rows[("one world", "per world-day")]["items"] == 2 * 3 + 6
    for mode, runs in (("per world-day", 6), ("batched K=2", 4)):
        backfill = rows[("backfill of 3 new worlds", mode)]
        assert backfill["items"] == 3 * (2 * 2 + 4) and backfill["runs"] == runs, backfill
    for mode, runs in (("per world-day", 6), ("batched K=2", 3)):
        refresh = rows[("daily refresh of 6 worlds", mode)]
        assert refresh["items"] == 6 * 3 and refresh["runs"] == runs, refresh
    assert rows[("daily refresh of 8 worlds", "batched K=2")]["runs"] == 4
    # the same account-wide bound for both modes
    assert (
        rows[("daily refresh of 6 worlds", "per world-day")]["bound_s"]
        == rows[("daily refresh of 6 worlds", "batched K=2")]["bound_s"]
    )
    for row in rows.values():
        assert row["wall_s"] > 0 and row["bound_s"] > 0 and row["naive_s"] > 0
        assert row["bound_by"] in row["bound_terms"]
        assert row["cpu_s"]["workers"] > 0 and "other" in row["cpu_s"]
    overhead = report["overhead"]
    assert overhead["run_wall_ms"] > 0 and overhead["first_step_cold_ms"] > 0
    variants = [row["variant"] for row in overhead["batched"]]
    assert variants == [
        "default",
        "DAGSTER_EVENT_BATCH_SIZE=100",
        "event batches + pooled connections",
    ]
    for row in overhead["batched"]:
        assert row["noop_range_run"]["cpu_ms_per_world_day"] > 0, row
    assert set(report["naive_per_item_s"]) == {"world_setup", "character_with_avatar", "post"}
    assert "one world" in printed and "bound set by" in printed


@pytest.mark.timeout(600)
def test_scale_smoke_ticks_and_ui_queries_answer(tmp_path: Path) -> None:
    """bench/scale.py at 10 worlds × 5 days: the schedule, the sensor and the UI queries run
    against PostgreSQL and the real webserver, and report no problem."""
    out = tmp_path / "scale.json"
    report, _ = run_smoke("scale.py", out)
    assert report["problems"] == []
    sections = {figure["section"] for figure in report["figures"]}
    assert {"setup", "schedule", "sensor", "ui"} <= sections
    ticks = [f for f in report["figures"] if f["section"] == "schedule"]
    assert all(f["seconds"] > 0 for f in ticks)
    # K = 4 at smoke size: the daemon's ticks create ceil(10 / 4) range runs, once without
    # and once with DAGSTER_EVENT_BATCH_SIZE; the new worlds' backfill ends in three ticks
    daemon = [f for f in ticks if f["measure"].startswith("daemon tick")]
    assert [f["count"] for f in daemon] == [3, 3]
    total = [f for f in report["figures"] if "all daemon ticks" in f["measure"]]
    assert len(total) == 1 and total[0]["count"] == 3 + 10 * 2, total
