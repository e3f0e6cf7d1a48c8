"""The benchmark harness at its smoke size: every scenario runs and its audit passes.

No timing is asserted (this machine's speed is not the pipeline's behaviour); what is checked
is that the harness populates what it says, through the real jobs, and reports every figure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from smoke_helpers import run_smoke


@pytest.mark.timeout(600)
def test_harness_smoke_runs_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    report, printed = run_smoke("harness.py", out)
    rows = {row["scenario"]: row for row in report["scenarios"]}
    # smoke sizes (bench/harness.py SMOKE): 3 characters + 6 posts; 3 worlds of 2 + 4;
    # 4 set-up worlds × 3 posts
    assert rows["one world"]["items"] == 2 * 3 + 6
    assert rows["backfill of 3 new worlds"]["items"] == 3 * (2 * 2 + 4)
    assert rows["daily refresh of 4 worlds"]["items"] == 4 * 3
    for row in rows.values():
        assert row["wall_s"] > 0 and row["bound_s"] > 0 and row["naive_s"] > 0
        assert row["bound_by"] in row["bound_terms"]
    overhead = report["overhead"]
    assert overhead["run_wall_ms"] > 0 and overhead["first_step_cold_ms"] > 0
    assert set(report["naive_per_item_s"]) == {"world_setup", "character_with_avatar", "post"}
    assert "one world" in printed and "bound set by" in printed


@pytest.mark.timeout(600)
def test_scale_smoke_ticks_and_ui_queries_answer(tmp_path: Path) -> None:
    """bench/scale.py at 20 worlds × 5 days: the schedule, the sensor and the UI queries run
    against PostgreSQL and the real webserver, and report no problem."""
    out = tmp_path / "scale.json"
    report, _ = run_smoke("scale.py", out)
    assert report["problems"] == []
    sections = {figure["section"] for figure in report["figures"]}
    assert {"setup", "schedule", "sensor", "ui"} <= sections
    ticks = [f for f in report["figures"] if f["section"] == "schedule"]
    assert all(f["seconds"] > 0 for f in ticks)
