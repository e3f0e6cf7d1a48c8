"""The ``generia-pipelines`` command line.

``generia-pipelines stack`` runs the local Generia stack in the foreground and prints
``export VAR=value`` lines, so ``eval "$(generia-pipelines stack &)"``-style shells or a
second terminal can point the pipeline at it. ``demo`` runs the whole pipeline for one
world against a throwaway-port stack and writes its feed (``generia_pipelines.demo``);
``dev`` runs the stack and ``dagster dev`` together (``generia_pipelines.dev``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from generia_pipelines.dev import DevOptions
    from generia_pipelines.local.stack import StackComponent, StackConfig

DEFAULT_DATA_DIR = Path(".generia/stack")
DEFAULT_PORTS = {
    "character": 50051,
    "media": 50052,
    "post": 50053,
    "world": 50054,
    "http": 8700,  # demo.DEMO_HTTP_PORT: the demo's previews point at it
    "runware": 8701,
}
_PORT_ORDER = ("character", "media", "post", "world", "http", "runware")
_FAULT_FIELDS: dict[str, Callable[[str], Any]] = {
    "latency_s": float,
    "error_rate": float,
    "error_code": str,
    "drop_after_commit_rate": float,
    "times": int,
}


def parse_fault(text: str) -> dict[str, Any]:
    """``CreateCharacter:error_rate=0.2,error_code=UNAVAILABLE`` -> a fault command dict."""
    method, sep, options = text.partition(":")
    if not method.strip():
        raise argparse.ArgumentTypeError(f"--fault {text!r}: want METHOD:key=val,key=val")
    command: dict[str, Any] = {"method": method.strip()}
    for item in filter(None, (part.strip() for part in options.split(","))) if sep else ():
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in _FAULT_FIELDS:
            known = ", ".join(_FAULT_FIELDS)
            raise argparse.ArgumentTypeError(f"--fault {text!r}: {item!r} is not key=val ({known})")
        try:
            command[key] = _FAULT_FIELDS[key](value.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"--fault {text!r}: bad value for {key}") from None
    return command


def stack_ports(args: argparse.Namespace) -> dict[str, int]:
    """Fixed defaults; ``--port-base N`` gives N..N+4 (0: free ports); per-port flags win."""
    if args.port_base is None:
        ports = dict(DEFAULT_PORTS)
    elif args.port_base == 0:
        ports = dict.fromkeys(_PORT_ORDER, 0)
    else:
        ports = {name: args.port_base + i for i, name in enumerate(_PORT_ORDER)}
    for name in _PORT_ORDER:
        override = getattr(args, f"{name}_port")
        if override is not None:
            ports[name] = override
    for name, port in ports.items():
        if not 0 <= port <= 65535:
            raise SystemExit(f"error: the {name} port {port} is out of range")
    return ports


def _add_port_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host``, ``--port-base`` and one flag per port, read back by ``stack_ports``."""
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    parser.add_argument(
        "--port-base",
        type=int,
        default=None,
        help="character, media, post, world, http, runware on N..N+5 (0: free ports); "
        "default 50051-50054, 8700 and 8701",
    )
    for name in _PORT_ORDER:
        parser.add_argument(
            f"--{name}-port", type=int, default=None, help=f"{name} port (overrides the base)"
        )


def _add_stack_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "stack",
        help="run the local Generia stack (gRPC services + object store) in the foreground",
        description="Run the local Generia stack until SIGINT/SIGTERM; prints export lines.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="SQLite files and objects (default: %(default)s)",
    )
    _add_port_arguments(parser)
    parser.add_argument("--token", default=None, help="require 'authorization: Bearer TOKEN'")
    parser.add_argument(
        "--fault",
        action="append",
        type=parse_fault,
        default=[],
        metavar="METHOD:key=val,...",
        help="inject a fault, e.g. CreateCharacter:error_rate=0.2 or object_store.PUT:latency_s=1",
    )
    parser.add_argument(
        "--no-idempotency",
        action="store_true",
        help="ignore idempotency-key metadata (chaos testing)",
    )
    parser.add_argument(
        "--url-ttl",
        type=int,
        default=600,
        help="presigned URL lifetime in seconds (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="fault injection RNG seed")
    parser.add_argument(
        "--no-runware", action="store_true", help="do not start the Runware stand-in"
    )
    parser.add_argument(
        "--revision",
        choices=["spec", "drifted"],
        default="spec",
        help="wire contract served: the specification, or the platform's drifted head "
        "revision (protos/platform_head/) (default: %(default)s)",
    )
    parser.add_argument(
        "--no-reflection", action="store_true", help="do not serve gRPC server reflection"
    )
    parser.add_argument(
        "--no-lookups",
        action="store_true",
        help="do not serve GetPost and GetMedia (a platform of the specification alone)",
    )
    parser.set_defaults(handler=_run_stack)


def _add_demo_parser(subparsers: Any) -> None:
    from generia_pipelines import demo

    parser = subparsers.add_parser(
        "demo",
        help="populate a demo world end to end against a local stack and write its feed",
        description="Start the local stack (the object store on a fixed port), materialize "
        "populate_world and "
        "daily_posts for one demo world through a persistent Dagster instance, print a "
        "summary and write the feed as one HTML file. Re-running reuses everything.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=demo.DEFAULT_DIR,
        help="state directory: stack/, dagster_home/, worlds.yaml, feed.html "
        "(default: %(default)s)",
    )
    parser.add_argument("--world-id", default=demo.DEFAULT_WORLD_ID, help="(default: %(default)s)")
    parser.add_argument("--world-name", default="", help="display name (default: from the id)")
    parser.add_argument("--prompt", default=demo.DEFAULT_PROMPT, help="the world's theme")
    parser.add_argument(
        "--language",
        default="",
        help="the world's language: ru or en (default: detected from the name and prompt)",
    )
    parser.add_argument(
        "--characters", type=int, default=demo.DEFAULT_CHARACTERS, help="(default: %(default)s)"
    )
    parser.add_argument(
        "--posts", type=int, default=demo.DEFAULT_POSTS, help="posts per day (default: %(default)s)"
    )
    parser.add_argument(
        "--days",
        type=int,
        default=demo.DEFAULT_DAYS,
        help="days of posts, ending yesterday (the latest daily partition) (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="stack data (default: DIR/stack)"
    )
    parser.add_argument(
        "--dagster-home", type=Path, default=None, help="(default: DIR/dagster_home)"
    )
    parser.add_argument("--feed", type=Path, default=None, help="(default: DIR/feed.html)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    parser.add_argument(
        "--http-port",
        type=int,
        default=demo.DEMO_HTTP_PORT,
        help="the object store's port, which the UI's image previews point at; fixed so they "
        "survive a restart, 0 for a free one (default: %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="show Dagster's INFO logs")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from generia_pipelines.demo import DemoOptions
    from generia_pipelines.demo_run import main_demo

    return main_demo(
        DemoOptions(
            root=args.dir,
            world_id=args.world_id,
            world_name=args.world_name,
            prompt=args.prompt,
            language=args.language,
            characters=args.characters,
            posts=args.posts,
            days=args.days,
            data_dir=args.data_dir,
            dagster_home=args.dagster_home,
            feed_path=args.feed,
            host=args.host,
            http_port=args.http_port,
            verbose=args.verbose,
        )
    )


def _add_dev_parser(subparsers: Any) -> None:
    from generia_pipelines import dev

    parser = subparsers.add_parser(
        "dev",
        help="run the local stack and `dagster dev` against it",
        description="Start the local Generia stack (fixed ports) with the Runware stand-in, "
        "then `dagster dev -m generia_pipelines.definitions` pointed at it; Ctrl-C stops both.",
        epilog="Arguments after `--` go to dagster dev.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=dev.DEFAULT_DIR,
        help="state directory: stack/ and dagster_home/ (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="stack data (default: DIR/stack)"
    )
    parser.add_argument(
        "--dagster-home", type=Path, default=None, help="(default: DIR/dagster_home)"
    )
    parser.add_argument(
        "--worlds-file",
        type=Path,
        default=None,
        help="worlds catalog (default: $GENERIA_WORLDS_FILE, DIR/worlds.yaml or ./worlds.yaml "
        "if present, else a sample written to DIR/worlds.yaml)",
    )
    parser.add_argument(
        "--world-service",
        action="store_true",
        help="use the stack's World service as the catalog instead of a worlds file",
    )
    parser.add_argument(
        "--backfill-days",
        type=_backfill_days,
        default=None,
        help="past days of posts the sensor gives each new world once it is set up "
        "(GENERIA_BACKFILL_DAYS; default: 1, the latest complete day)",
    )
    _add_port_arguments(parser)
    parser.add_argument(
        "--ui-host", default="127.0.0.1", help="Dagster webserver host (default: %(default)s)"
    )
    parser.add_argument(
        "--ui-port",
        type=int,
        default=dev.DEFAULT_UI_PORT,
        help="Dagster webserver port (default: %(default)s)",
    )
    parser.add_argument("dagster_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(handler=_run_dev)


def dev_options(args: argparse.Namespace) -> DevOptions:
    """The parsed ``dev`` flags as options (separate from running, for tests)."""
    from generia_pipelines.dev import DevOptions

    extra = list(args.dagster_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    return DevOptions(
        root=args.dir,
        data_dir=args.data_dir,
        dagster_home=args.dagster_home,
        worlds_file=args.worlds_file,
        host=args.host,
        ports=stack_ports(args),
        ui_host=args.ui_host,
        ui_port=args.ui_port,
        world_service=args.world_service,
        backfill_days=args.backfill_days,
        dagster_args=tuple(extra),
    )


def _backfill_days(raw: str) -> int:
    try:
        days = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of days") from None
    if not 0 <= days <= 366:
        raise argparse.ArgumentTypeError(f"{days} must be within 0..366")
    return days


def _run_dev(args: argparse.Namespace) -> int:
    from generia_pipelines.dev import run_dev

    return run_dev(dev_options(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="generia-pipelines", description="Generia world population pipelines."
    )
    parser.add_argument("--log-level", default="WARNING", help="(default: %(default)s)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_stack_parser(subparsers)
    _add_demo_parser(subparsers)
    _add_dev_parser(subparsers)
    return parser


def _run_stack(args: argparse.Namespace) -> int:
    from generia_pipelines.local.revisions import Revision
    from generia_pipelines.local.runware_standin import RunwareComponent
    from generia_pipelines.local.stack import StackConfig

    ports = stack_ports(args)
    config = StackConfig(
        data_dir=args.data_dir,
        host=args.host,
        character_port=ports["character"],
        media_port=ports["media"],
        post_port=ports["post"],
        world_port=ports["world"],
        http_port=ports["http"],
        token=args.token,
        url_ttl_s=args.url_ttl,
        honour_idempotency=not args.no_idempotency,
        seed=args.seed,
        revision=Revision(args.revision),
        reflection=not args.no_reflection,
        lookups=not args.no_lookups,
    )
    components = [] if args.no_runware else [RunwareComponent(ports["runware"], seed=args.seed)]
    try:
        return asyncio.run(serve_stack(config, args.fault, components))
    except KeyboardInterrupt:
        return 130


async def serve_stack(
    config: StackConfig,
    faults: Sequence[dict[str, Any]] = (),
    components: Sequence[StackComponent] = (),
) -> int:
    """Start the stack, print its environment, wait for SIGINT/SIGTERM, stop cleanly."""
    from generia_pipelines.local.stack import LocalStack

    stack = LocalStack(config, components)
    try:
        for command in faults:
            stack.faults.apply(command)
    except ValueError as exc:
        print(f"error: --fault: {exc}", file=sys.stderr)
        return 2
    try:
        await stack.start()
    except OSError as exc:
        print(f"error: cannot start the local stack: {exc}", file=sys.stderr)
        return 1
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        for name, value in stack.env.items():
            print(f"export {name}={shlex.quote(value)}")
        sys.stdout.flush()
        print(
            f"local Generia stack running (data in {config.data_dir}); Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        await stopping.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await asyncio.wait_for(stack.stop(), timeout=10.0)
    print("local Generia stack stopped", file=sys.stderr, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
