"""``generia-pipelines dev``: the local stack plus ``dagster dev`` in one command.

Starts the local Generia stack (with the Runware stand-in) on its fixed ports, then runs
``dagster dev -m generia_pipelines.definitions`` as a child process whose environment points
every resource at that stack. When ``dagster dev`` exits, or on Ctrl-C / SIGTERM, the child
is given time to shut down and the stack is stopped.

State lives under one directory (default ``.generia/dev``): the stack's data (``stack/``),
the Dagster instance and the generation ledger (``dagster_home/``). ``--dir .generia/demo``
opens what ``generia-pipelines demo`` made, against the same data.

The worlds catalog is a file: ``--worlds-file``, else ``GENERIA_WORLDS_FILE``, else
``DIR/worlds.yaml`` or ``./worlds.yaml`` when present, else a two-world sample written to
``DIR/worlds.yaml``. ``--world-service`` makes the stack's World service the catalog instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from generia_pipelines.demo import (
    PLATFORM_VARIABLES,
    StateDirs,
    ensure_dagster_home,
    write_worlds_file,
)

DEFAULT_DIR = Path(".generia/dev")
#: A warnings filter (``-W`` syntax) for the one warning `dagster dev` prints at start.
SUPERSEDED_DEV_WARNING = "ignore:Function `dev_command` is superseded:Warning"
DEFINITIONS_MODULE = "generia_pipelines.definitions"
DEFAULT_UI_PORT = 3000
#: How long ``dagster dev`` gets to stop its webserver, daemon and code server after Ctrl-C.
SHUTDOWN_GRACE_S = 30.0
SAMPLE_WORLDS: tuple[dict[str, Any], ...] = (
    {
        "id": "neon-harbor",
        "name": "Neon Harbor",
        "prompt": (
            "A rain-soaked harbour megacity of neon signs, night markets and container "
            "stacks, where smugglers, street poets, noodle cooks and dock mechanics share the "
            "same flooded alleys between typhoons."
        ),
        "characters": 8,
        "posts_per_day": 12,
    },
    {
        "id": "verdant-reach",
        "name": "Verdant Reach",
        "prompt": (
            "A solarpunk river valley of terraced gardens, wind-powered libraries and "
            "floating markets, where botanists, bicycle couriers, beekeepers and cloud "
            "engineers document a slow, hopeful everyday life."
        ),
        "characters": 6,
        "posts_per_day": 8,
    },
)


@dataclass(frozen=True)
class DevOptions(StateDirs):
    """Where ``dev`` keeps its state, which ports it uses, and what it passes to Dagster."""

    root: Path = DEFAULT_DIR
    worlds_file: Path | None = None
    host: str = "127.0.0.1"
    ports: Mapping[str, int] = field(default_factory=dict)
    ui_host: str = "127.0.0.1"
    ui_port: int = DEFAULT_UI_PORT
    world_service: bool = False
    #: Past days of posts the sensor gives a new world (GENERIA_BACKFILL_DAYS); None keeps
    #: the caller's setting or the default.
    backfill_days: int | None = None
    dagster_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class DevLaunch:
    """The child process ``dev`` starts: its command line and environment."""

    command: list[str]
    env: dict[str, str]


def dev_command(options: DevOptions, python: str | None = None) -> list[str]:
    """``python -m dagster dev -m generia_pipelines.definitions -h HOST -p PORT [args]``.

    ``-m dagster`` on this interpreter, not ``dagster`` from PATH, so the child runs in the
    same virtualenv as this command."""
    return [
        python or sys.executable,
        "-m",
        "dagster",
        "dev",
        "-m",
        DEFINITIONS_MODULE,
        "-h",
        options.ui_host,
        "-p",
        str(options.ui_port),
        *options.dagster_args,
    ]


def resolve_worlds_file(options: DevOptions, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The catalog file and whether the sample must be written there (see the module doc)."""
    if options.worlds_file is not None:
        return options.worlds_file.absolute(), not options.worlds_file.exists()
    if environ.get("GENERIA_WORLDS_FILE"):
        return Path(environ["GENERIA_WORLDS_FILE"]).absolute(), False
    for candidate in (options.root / "worlds.yaml", Path("worlds.yaml")):
        if candidate.exists():
            return candidate.absolute(), False
    return (options.root / "worlds.yaml").absolute(), True


def dev_environment(
    options: DevOptions,
    environ: Mapping[str, str],
    stack_env: Mapping[str, str],
    worlds_file: Path,
) -> dict[str, str]:
    """The child's environment: the caller's, pointed at the local stack and ``DIR``.

    Variables that would send the pipeline to another platform or ledger are dropped, so
    the ledger (under DAGSTER_HOME) and the stack's data always describe the same world."""
    env = {k: v for k, v in environ.items() if k not in PLATFORM_VARIABLES}
    env.update(stack_env)
    if not options.world_service:
        env.pop("GENERIA_WORLD_ADDR", None)
    env["GENERIA_WORLDS_FILE"] = str(worlds_file)
    env["DAGSTER_HOME"] = str(options.home.absolute())
    if options.backfill_days is not None:
        env["GENERIA_BACKFILL_DAYS"] = str(options.backfill_days)
    # `dagster dev` warns at every start that `dg dev` supersedes it; dg is not part of
    # this project, so the warning only adds noise to the first lines a newcomer reads.
    quiet = SUPERSEDED_DEV_WARNING
    env["PYTHONWARNINGS"] = ",".join(filter(None, (env.get("PYTHONWARNINGS"), quiet)))
    return env


def prepare_launch(
    options: DevOptions, stack_env: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> DevLaunch:
    """Everything but starting processes: DAGSTER_HOME, the worlds file, command and env."""
    environ = os.environ if environ is None else environ
    ensure_dagster_home(options.home)
    worlds_file, write_sample = resolve_worlds_file(options, environ)
    if write_sample and not options.world_service:
        write_worlds_file(worlds_file, SAMPLE_WORLDS)
    return DevLaunch(
        dev_command(options), dev_environment(options, environ, stack_env, worlds_file)
    )


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code


def _wait(child: subprocess.Popen[bytes]) -> int:
    """Wait for ``dagster dev``. Ctrl-C reaches only this process (the child has its own
    process group), so it is forwarded exactly once: a second SIGINT would cut short
    ``dagster dev``'s own shutdown of its webserver and daemon. A second Ctrl-C, or no exit
    within the grace period, escalates to SIGTERM, then SIGKILL of the child's group."""
    try:
        return _exit_code(child.wait())
    except KeyboardInterrupt:
        pass
    print("dev: stopping dagster dev ...", file=sys.stderr, flush=True)
    steps: tuple[tuple[signal.Signals, float | None], ...] = (
        (signal.SIGINT, SHUTDOWN_GRACE_S),
        (signal.SIGTERM, 10.0),
        (signal.SIGKILL, None),
    )
    for sig, timeout in steps:
        with contextlib.suppress(ProcessLookupError):
            if sig is signal.SIGKILL:
                os.killpg(child.pid, sig)  # the child's group: webserver and daemon too
            else:
                child.send_signal(sig)
        try:
            child.wait(timeout=timeout)
            break
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            continue
    return 130


def run_dev(options: DevOptions) -> int:
    """Start the stack, run ``dagster dev`` until it exits, stop the stack."""
    from generia_pipelines.local.runware_standin import RunwareComponent
    from generia_pipelines.local.stack import StackConfig, ThreadedStack

    ports = dict(options.ports)
    config = StackConfig(
        data_dir=options.stack_dir.absolute(),
        host=options.host,
        character_port=ports.get("character", 0),
        media_port=ports.get("media", 0),
        post_port=ports.get("post", 0),
        world_port=ports.get("world", 0),
        http_port=ports.get("http", 0),
    )
    stack = ThreadedStack(config, [RunwareComponent(ports.get("runware", 0))])
    try:
        stack.start()
    except (OSError, TimeoutError) as exc:
        print(
            f"error: cannot start the local stack: {exc} (is another stack or dev running? "
            "--port-base picks other ports)",
            file=sys.stderr,
        )
        return 1
    try:
        launch = prepare_launch(options, stack.env)
        _announce(options, stack.env, launch)
        restore = _catch_sigint()
        try:
            try:
                child = subprocess.Popen(launch.command, env=launch.env, process_group=0)
            except OSError as exc:
                print(f"error: cannot start dagster dev: {exc}", file=sys.stderr)
                return 1
            previous = _forward_sigterm(child)
            try:
                return _wait(child)
            finally:
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)
        finally:
            restore()
    finally:
        stack.stop()
        print("dev: local Generia stack stopped", file=sys.stderr, flush=True)


def _catch_sigint() -> Callable[[], None]:
    """Make SIGINT raise KeyboardInterrupt here, and be default in the child, even when this
    process inherited it ignored (a background job of a script): an ignored SIGINT is
    inherited across exec, and ``dagster dev`` maps SIGTERM to its SIGINT handler, so the
    child could be stopped by neither. Returns the function that restores the handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore


def _forward_sigterm(child: subprocess.Popen[bytes]) -> Any:
    """SIGTERM to ``dev`` becomes SIGTERM to ``dagster dev`` (then ``_wait`` returns)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)

    return signal.signal(signal.SIGTERM, forward)


def _announce(options: DevOptions, stack_env: Mapping[str, str], launch: DevLaunch) -> None:
    """Say what runs where; addresses only, never the Runware key."""
    shown = ("GENERIA_CHARACTER_ADDR", "GENERIA_MEDIA_ADDR", "GENERIA_POST_ADDR")
    lines = [f"dev: local Generia stack up (data in {options.stack_dir.absolute()})"]
    lines += [f"dev:   {name}={stack_env[name]}" for name in shown if name in stack_env]
    if "RUNWARE_URL" in stack_env:
        lines.append(f"dev:   RUNWARE_URL={stack_env['RUNWARE_URL']} (stand-in)")
    catalog = (
        f"World service at {stack_env.get('GENERIA_WORLD_ADDR', '?')}"
        if options.world_service
        else launch.env["GENERIA_WORLDS_FILE"]
    )
    lines.append(f"dev: worlds catalog: {catalog}")
    lines.append(f"dev: DAGSTER_HOME={launch.env['DAGSTER_HOME']}")
    lines.append(f"dev: Dagster UI on http://{options.ui_host}:{options.ui_port} (Ctrl-C stops)")
    print("\n".join(lines), file=sys.stderr, flush=True)
