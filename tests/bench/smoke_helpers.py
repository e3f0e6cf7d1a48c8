"""Running a benchmark script at its smoke size, as the bench tests do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_smoke(script: str, out: Path) -> tuple[dict[str, Any], str]:
    """``bench/{script} --smoke --json out``, bounded; its report and its printed output.
    Fails, showing the end of its output, if the script does not exit 0."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    report: dict[str, Any] = json.loads(out.read_text())
    return report, done.stdout
