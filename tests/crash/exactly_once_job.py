"""One run of a code location job in its own process, started warm and told what to run.

Used by ``bench/exactly_once.py`` and ``tests/crash/test_exactly_once.py``. The process
imports Dagster and the heavy libraries first, prints ``EO-READY <pid>`` on stdout and then
reads one JSON line from stdin::

    {"job": "populate_world", "partition": "my-world", "run_id": "...",
     "env": {"GENERIA_LEDGER_URL": "..."}, "run_config": {...}, "result": "/path.json"}

It applies ``env``, imports the code location (``generia_pipelines.definitions``, from
``PYTHONPATH`` first: ``--compare`` points it at another revision's worktree), runs the job
with ``execute_in_process`` against the persistent instance of ``DAGSTER_HOME``, writes
``{"success", "run_id", "errors", "elapsed_s", "module"}`` to ``result`` and exits 0 when the
run succeeded, 1 when it failed. Starting warm lets several runs start at the same moment,
and lets a kill land in the run itself rather than in Python's imports.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def _prewarm() -> None:
    """The imports every run needs and that do not depend on the pipeline's revision."""
    import dagster  # noqa: F401
    import grpc  # noqa: F401
    import httpx  # noqa: F401
    import pydantic  # noqa: F401
    import sqlalchemy  # noqa: F401

    for optional in ("psycopg2", "PIL.Image", "websockets", "runware"):
        try:
            __import__(optional)
        except ImportError:
            pass


def _errors(result: Any) -> list[str]:
    """The run's step failures, in the words the step used."""
    out: list[str] = []
    for event in result.all_events:
        if event.event_type_value not in ("STEP_FAILURE", "RUN_FAILURE"):
            continue
        data = event.event_specific_data
        error = getattr(data, "error", None)
        text = getattr(error, "message", None) or event.message or ""
        out.append(f"{event.step_key or 'run'}: {text.strip()[:2000]}")
    return out


def main() -> int:
    _prewarm()
    print(f"EO-READY {os.getpid()}", flush=True)
    # From here on stdout goes where stderr goes (the run's log file), not into the pipe.
    os.dup2(2, 1)
    line = sys.stdin.readline()
    if not line.strip():
        return 3  # the bench gave up on this process
    command = json.loads(line)
    os.environ.update(command.get("env", {}))
    started = time.monotonic()
    from dagster import DagsterInstance

    import generia_pipelines
    from generia_pipelines.definitions import defs

    job = defs.resolve_job_def(command["job"])
    errors: list[str]
    with DagsterInstance.get() as instance:
        try:
            result = job.execute_in_process(
                run_config=command.get("run_config") or {},
                instance=instance,
                partition_key=command["partition"],
                run_id=command["run_id"],
                raise_on_error=False,
            )
            success, errors = bool(result.success), _errors(result)
        except Exception as exc:  # a run that cannot even start is a failed run
            success, errors = False, [f"{type(exc).__name__}: {exc}"]
    answer = {
        "success": success,
        "run_id": command["run_id"],
        "errors": errors,
        "elapsed_s": round(time.monotonic() - started, 3),
        "module": generia_pipelines.__file__,
    }
    path = command["result"]
    with open(path + ".tmp", "w") as out:
        json.dump(answer, out)
    os.replace(path + ".tmp", path)
    return 0 if success else 1


if __name__ == "__main__":
    sys.exit(main())
