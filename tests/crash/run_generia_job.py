"""Runs one of the code location's jobs the way a Dagster run worker would, in its own process.

The crash test starts this script, kills it with SIGKILL mid-step, then starts it again to
re-execute the killed run from failure. Usage (the instance comes from ``DAGSTER_HOME``)::

    run_generia_job.py run JOB PARTITION_KEY RUN_ID
    run_generia_job.py reexecute JOB PARENT_RUN_ID

It prints the run id and exits 0 when the run succeeded, 1 when it failed.
"""

from __future__ import annotations

import sys

from dagster import (
    DagsterInstance,
    JobDefinition,
    ReexecutionOptions,
    execute_job,
    reconstructable,
)


def populate_world() -> JobDefinition:
    """The code location's ``populate_world`` job (a module-level function: reconstructable)."""
    from generia_pipelines.definitions import defs

    return defs.resolve_job_def("populate_world")


def daily_posts() -> JobDefinition:
    """The code location's ``daily_posts`` job."""
    from generia_pipelines.definitions import defs

    return defs.resolve_job_def("daily_posts")


JOBS = {"populate_world": populate_world, "daily_posts": daily_posts}


def main(argv: list[str]) -> int:
    mode, job_name, target, *rest = argv
    build = JOBS[job_name]
    with DagsterInstance.get() as instance:
        if mode == "run":
            result = build().execute_in_process(
                instance=instance, partition_key=target, run_id=rest[0], raise_on_error=False
            )
            run_id, success = result.run_id, result.success
        elif mode == "reexecute":
            parent = instance.get_run_by_id(target)
            if parent is None:
                raise SystemExit(f"no run {target} in {instance.root_directory}")
            # A re-execution carries the partition of the run it re-executes, as the UI's does.
            tags = {k: v for k, v in parent.tags.items() if k.startswith("dagster/partition")}
            with execute_job(
                reconstructable(build),
                instance,
                tags=tags,
                reexecution_options=ReexecutionOptions.from_failure(target, instance),
            ) as executed:
                run_id, success = executed.run_id, executed.success
        else:
            raise SystemExit(f"unknown mode {mode!r}: use run or reexecute")
    print(run_id, flush=True)
    return 0 if success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
