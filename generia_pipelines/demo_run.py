"""Running the demo: the stack, the runs through Dagster, and what they left behind.

The options, the report and its summary are in ``demo.py``; this module does the work.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from generia_pipelines.demo import (
    DEMO_CLEARED_VARIABLES,
    PLATFORM_VARIABLES,
    DemoError,
    DemoOptions,
    DemoReport,
    RunOutcome,
    demo_days,
    dev_hint,
    ensure_dagster_home,
    format_summary,
    patched_environ,
    validate_options,
    world_language,
    write_worlds_file,
)

#: Run config of the demo's runs: Dagster's console logs, quiet unless --verbose.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
VERBOSE_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def run_demo(options: DemoOptions, progress: Callable[[str], None] | None = None) -> DemoReport:
    """Run the demo end to end and return what it did; raises ``DemoError`` when it cannot
    start (bad options, ports, days). A failed run is reported, not raised."""
    from generia_pipelines.local.runware_standin import RunwareComponent
    from generia_pipelines.local.stack import STACK_URL_VAR

    say = progress or (lambda _message: None)
    validate_options(options)
    days = demo_days(options.days, options.last_day)
    began = time.monotonic()
    home = ensure_dagster_home(options.home)
    worlds_file = write_worlds_file(options.worlds_file, [_world_entry(options)])
    language = world_language(worlds_file)

    runware = RunwareComponent()
    stack = _start_stack(options, runware)
    say(f"local stack up (data in {options.stack_dir.absolute()})")
    try:
        stack_url = stack.env[STACK_URL_VAR]
        with patched_environ(_demo_env(stack.env, worlds_file, home), DEMO_CLEARED_VARIABLES):
            before = _platform_state(stack_url, options.world_id)
            runs = _run_plan(options, days, say)
            after = _platform_state(stack_url, options.world_id)
            images_paid = runware.standin.stats.images_generated if runware.standin else 0
            feed_path, feed_images = _write_feed(options, stack_url, language, after)
            say(f"feed written to {feed_path}")
    finally:
        stack.stop()

    failed = next((r for r in runs if not r.success), None)
    return DemoReport(
        world_id=options.world_id,
        world_name=options.name,
        days=tuple(day.isoformat() for day in days),
        language=language,
        characters=len(after.people),
        new_characters=len(after.people) - len(before.people),
        avatars=sum(1 for p in after.people if p.get("avatar_media_id")),
        posts=len(after.published),
        new_posts=len(after.published) - len(before.published),
        images_paid=images_paid,
        ledger_images=after.ledger_images,
        cost_usd_this_run=max(after.cost_usd - before.cost_usd, 0.0),
        cost_usd_total=after.cost_usd,
        wall_s=time.monotonic() - began,
        runs=tuple(runs),
        feed_path=feed_path,
        feed_images=feed_images,
        dagster_home=home,
        data_dir=options.stack_dir.absolute(),
        dev_command=dev_hint(options),
        error=f"{failed.job} {failed.partition} failed: {failed.error or failed.status}"
        if failed is not None
        else None,
    )


def _world_entry(options: DemoOptions) -> dict[str, Any]:
    """The demo world as the worlds file lists it."""
    entry: dict[str, Any] = {
        "id": options.world_id,
        "name": options.name,
        "prompt": options.prompt.strip(),
        "characters": options.characters,
        "posts_per_day": options.posts,
    }
    if options.language:
        entry["language"] = options.language
    return entry


def _start_stack(options: DemoOptions, runware: Any) -> Any:
    """The local stack with the Runware stand-in, or a DemoError saying why it cannot start."""
    from generia_pipelines.local.stack import StackConfig, ThreadedStack

    config = StackConfig(
        data_dir=options.stack_dir.absolute(), host=options.host, http_port=options.http_port
    )
    stack = ThreadedStack(config, [runware])
    try:
        stack.start()
    except (OSError, TimeoutError) as exc:
        hint = (
            f" (is `generia-pipelines dev` or another demo using port {options.http_port}? "
            "stop it, or pass --http-port 0 for a free port; previews then last until the "
            "stack restarts)"
            if options.http_port
            else ""
        )
        raise DemoError(f"cannot start the local stack: {exc}{hint}") from exc
    return stack


def _demo_env(stack_env: Mapping[str, str], worlds_file: Path, home: Path) -> dict[str, str]:
    """The environment of the demo's runs: the stack's addresses, the demo's files."""
    env = {k: v for k, v in stack_env.items() if k not in PLATFORM_VARIABLES}
    env.update(
        {
            "GENERIA_WORLDS_FILE": str(worlds_file),
            "GENERIA_TEXT_BACKEND": "local",
            "DAGSTER_HOME": str(home),
        }
    )
    return env


@dataclass(frozen=True)
class _PlatformState:
    """What the platform and the ledger hold of the world at one moment."""

    people: list[dict[str, Any]]
    published: list[dict[str, Any]]
    cost_usd: float
    ledger_images: int
    post_days: dict[str, str]


def _platform_state(stack_url: str, world: str) -> _PlatformState:
    from generia_pipelines.generation.planning import POSTS
    from generia_pipelines.ledger import Ledger, default_ledger_url

    with Ledger(default_ledger_url()) as ledger:
        return _PlatformState(
            people=_platform_list(stack_url, world, "characters"),
            published=_platform_list(stack_url, world, "posts"),
            cost_usd=ledger.cost(world),
            ledger_images=ledger.spent(world).images,
            post_days={
                str(unit.post_id): unit.partition
                for unit in ledger.units(world, POSTS)
                if unit.post_id
            },
        )


def _run_plan(
    options: DemoOptions, days: list[date], say: Callable[[str], None]
) -> list[RunOutcome]:
    """``populate_world``, then each day's ``daily_posts``; stops at the first failure
    (posts need the setup, and a failed day usually fails the next for the same reason)."""
    from dagster import DagsterInstance

    from generia_pipelines.partitions import world_day_key

    world = options.world_id
    definitions = _demo_definitions()
    run_config = VERBOSE_LOGS if options.verbose else QUIET_LOGS
    runs: list[RunOutcome] = []
    with DagsterInstance.get() as instance:
        if not instance.has_dynamic_partition("worlds", world):
            instance.add_dynamic_partitions("worlds", [world])
        plan = [("populate_world", world)] + [
            ("daily_posts", str(world_day_key(world, day))) for day in days
        ]
        for job_name, partition in plan:
            say(f"{job_name} {partition} ...")
            outcome = _execute(definitions, instance, job_name, partition, run_config)
            runs.append(outcome)
            say(f"{job_name} {partition}: {outcome.status} in {outcome.seconds:.1f} s")
            if not outcome.success:
                break
    return runs


def _write_feed(
    options: DemoOptions, stack_url: str, language: str, state: _PlatformState
) -> tuple[Path, int]:
    """Write the world's feed page; its path and how many images it shows."""
    from generia_pipelines.feed import fetch_feed, write_feed

    feed = fetch_feed(
        stack_url,
        options.world_id,
        world_name=options.name,
        prompt=options.prompt.strip(),
        language=language,
        post_days=state.post_days,
    )
    return write_feed(feed, options.feed), feed.images


def main_demo(options: DemoOptions) -> int:
    """The CLI entry: run, print the summary, exit 0 only when every run succeeded."""
    import httpx

    from generia_pipelines.errors import GeneriaError

    try:
        report = run_demo(options, progress=lambda m: print(f"demo: {m}", file=sys.stderr))
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (GeneriaError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_summary(report))
    sys.stdout.flush()
    if not report.success:
        print(f"error: {report.error or 'a run failed'}", file=sys.stderr)
        return 1
    return 0


def _platform_list(stack_url: str, world_id: str, what: str) -> list[dict[str, Any]]:
    import httpx

    response = httpx.get(f"{stack_url}/_admin/worlds/{world_id}/{what}", timeout=10.0)
    response.raise_for_status()
    items: list[dict[str, Any]] = response.json()
    return items


def _root_cause(error: Any) -> str:
    """The innermost cause of a Dagster error info, as ``ErrorClass: first line``."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    message = str(getattr(error, "message", "") or "").strip()
    first = message.splitlines()[0] if message else "failed"
    head, sep, rest = first.partition(": ")
    if sep and "." in head and " " not in head:  # "package.module.Error: text"
        first = f"{head.rsplit('.', 1)[1]}: {rest}"
    return first


def _failure_message(result: Any) -> str:
    """Why a run failed, in one line: the root cause of its first failure event."""
    for event in result.all_events:
        data = getattr(event, "event_specific_data", None)
        error = getattr(data, "error", None)
        if error is not None and (event.is_failure or event.is_resource_init_failure):
            where = f"step {event.step_key}: " if event.step_key else ""
            return where + _root_cause(error)
    return "the run failed; see its logs in the Dagster UI"


def _demo_definitions() -> Any:
    """The code location's assets and jobs with resources read from the current environment.

    ``defs`` reads the environment when its module is imported, possibly before the demo
    set it; building the resources again here points them at the demo's stack."""
    from dagster import Definitions

    from generia_pipelines.definitions import defs, resources_from_env

    return Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        executor=defs.executor,
        resources=resources_from_env(),
    )


def _execute(
    definitions: Any,
    instance: Any,
    job_name: str,
    partition: str,
    run_config: Mapping[str, Any],
) -> RunOutcome:
    from dagster import DagsterError

    job = definitions.resolve_job_def(job_name)
    started = time.monotonic()
    try:
        result = job.execute_in_process(
            partition_key=partition,
            instance=instance,
            raise_on_error=False,
            run_config=dict(run_config),
        )
    except DagsterError as exc:
        # Refused before a run existed (an unknown partition, bad config).
        return RunOutcome(
            job_name, partition, "", "NOT_STARTED", time.monotonic() - started, str(exc)
        )
    seconds = time.monotonic() - started
    record = instance.get_run_by_id(result.run_id)
    status = (
        record.status.value if record is not None else ("SUCCESS" if result.success else "FAILURE")
    )
    error = None if result.success else _failure_message(result)
    return RunOutcome(job_name, str(partition), result.run_id, status, seconds, error)
