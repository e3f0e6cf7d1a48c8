"""bench/exactly_once.py at its smoke size: every scenario runs and its audit is clean.

No timing is asserted; what is checked is that concurrent launches, SIGKILLs, a Runware outage
and unusable images leave no image paid twice, no duplicate and no world stuck.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from smoke_helpers import run_smoke


@pytest.mark.timeout(600)
def test_exactly_once_smoke_audit_is_clean(tmp_path: Path) -> None:
    out = tmp_path / "exactly_once.json"
    report, printed = run_smoke("exactly_once.py", out)
    assert report["problems"] == []
    assert "sqlite" in report["backends"]
    for backend, variants in report["backends"].items():
        rows = {row["scenario"]: row for row in variants["current"]["rows"]}
        assert set(rows) == {"concurrent", "sigkill", "outage", "invalid"}, backend
        for row in rows.values():
            assert row["paid_twice"] == 0, (backend, row)
            assert row["duplicate_characters"] == 0 and row["duplicate_posts"] == 0, row
            # Even after Runware sent garbage: the slow start caps the waste, so the budget
            # left finishes the day once Runware is fixed.
            assert row["stuck"] == 0, (backend, row)
        assert rows["concurrent"]["images_billed"] == rows["concurrent"]["images_needed"]
        assert rows["sigkill"]["images_billed"] == rows["sigkill"]["images_needed"]
        assert rows["sigkill"]["runs_killed"] >= 1
        assert rows["outage"]["outage_spent_images"] == 0
        assert rows["outage"]["outage_failed_bounded"] and rows["outage"]["outage_names_runware"]
        assert rows["invalid"]["faulty_runs_failed"] == rows["invalid"]["trials"]
    if "postgresql" not in report["backends"]:
        assert any("PostgreSQL" in note for note in report["notes"])
    assert "sqlite" in printed and "paid2x" in printed
