"""bench/scale.py's view of the daemon: a workspace with its own code server, the daemons'
thread pools, and what a range run request covers (to check the requests and runs made)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from scale_env import EVENT_BATCH_VAR, LOCATION, QUERY_TIMEOUT_S, Layout

if TYPE_CHECKING:
    from dagster import DagsterInstance
    from dagster._core.workspace.context import WorkspaceProcessContext

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@contextlib.contextmanager
def daemon_workspace(
    instance: DagsterInstance, layout: Layout, backfill_days: int
) -> Iterator[WorkspaceProcessContext]:
    """The workspace as the daemon loads it: a gRPC code server started from workspace.yaml.

    The code server takes its environment when it starts, so GENERIA_BACKFILL_DAYS is set
    for its start and each value needs its own workspace.
    """
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._daemon.controller import create_daemon_grpc_server_registry

    previous = os.environ.get("GENERIA_BACKFILL_DAYS")
    os.environ["GENERIA_BACKFILL_DAYS"] = str(backfill_days)
    try:
        target = WorkspaceFileTarget(paths=[str(layout.workspace_file)])
        with (
            create_daemon_grpc_server_registry(instance) as registry,
            WorkspaceProcessContext(instance, target, grpc_server_registry=registry) as context,
        ):
            entry = context.create_request_context().get_code_location_entries()[LOCATION]
            if entry.code_location is None:
                raise RuntimeError(f"code location did not load: {entry.load_error}")
            yield context
    finally:
        os.environ["GENERIA_BACKFILL_DAYS"] = previous or "0"


def _daemon_logger(layout: Layout) -> logging.Logger:
    """The daemons log a line per run: into a file, as a daemon would, not the console."""
    logger = logging.getLogger("generia.bench.daemon")
    if not logger.handlers:
        logger.addHandler(logging.FileHandler(layout.root / "daemon.log"))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def _errors(yielded: Iterable[Any]) -> list[str]:
    from dagster._utils.error import SerializableErrorInfo

    return [str(item) for item in yielded if isinstance(item, SerializableErrorInfo)]


@contextlib.contextmanager
def daemon_pools(workers: int) -> Iterator[tuple[ThreadPoolExecutor | None, ...]]:
    """The daemons' thread pools for ``use_threads``/``num_submit_workers``, or none."""
    if not workers:
        yield None, None
        return
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench_tick") as ticks,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench_submit") as submit,
    ):
        yield ticks, submit


def _finish(futures: Mapping[str, Future[Any]]) -> None:
    """With threads the daemon only starts a tick: wait for it as the next iteration would."""
    for future in futures.values():
        future.result(timeout=QUERY_TIMEOUT_S * 10)


@contextlib.contextmanager
def event_batch(size: int) -> Iterator[None]:
    """DAGSTER_EVENT_BATCH_SIZE in this process (the daemon's), ``size`` or unset for 0.

    Dagster reads it at every event; creating a run writes a planned event per partition of
    each asset and check, which it then bulk-inserts in batches of this size.
    """
    previous = os.environ.get(EVENT_BATCH_VAR)
    if size:
        os.environ[EVENT_BATCH_VAR] = str(size)
    else:
        os.environ.pop(EVENT_BATCH_VAR, None)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(EVENT_BATCH_VAR, None)
        else:
            os.environ[EVENT_BATCH_VAR] = previous


def span(first: str, last: str, order: Sequence[str]) -> list[str]:
    """The keys from ``first`` to ``last`` in ``order``; empty if either is missing."""
    try:
        a, b = order.index(first), order.index(last)
    except ValueError:
        return []
    return list(order[a : b + 1])


def covered(
    tags: Mapping[str, str], key: str | None, worlds: Sequence[str], days: Sequence[str]
) -> list[str]:
    """The partition keys a run (request) covers: its one key, or every key of its range
    (a rectangle of worlds in ``worlds`` order × days for ``date|world`` keys)."""
    if key:
        return [key]
    first, last = tags.get(RANGE_START, ""), tags.get(RANGE_END, "")
    if not first or not last:
        return []
    if "|" not in first:
        return span(first, last, worlds)
    (day0, world0), (day1, world1) = first.split("|", 1), last.split("|", 1)
    return [
        f"{day}|{world}" for day in span(day0, day1, days) for world in span(world0, world1, worlds)
    ]


def tag_problems(tags: Mapping[str, str], key: str | None) -> str | None:
    """What is wrong with a run's tags: a one-partition run names its partition and world;
    a range run its range and its worlds (``generia/worlds: first..last``)."""
    if key:
        world = key.rpartition("|")[2]
        if tags.get("dagster/partition") != key or tags.get("generia/world") != world:
            return f"{key}: partition or world tag missing"
        return None
    first, last = tags.get(RANGE_START), tags.get(RANGE_END)
    if not first or not last:
        return f"neither a partition nor a range: {dict(tags)}"
    worlds = (first.rpartition("|")[2], last.rpartition("|")[2])
    want = (
        {"generia/world": worlds[0]}
        if worlds[0] == worlds[1]
        else {"generia/worlds": f"{worlds[0]}..{worlds[1]}"}
    )
    if any(tags.get(name) != value for name, value in want.items()):
        return f"{first}..{last}: world tags {want} missing"
    return None


def events_of_runs(instance: DagsterInstance, run_ids: Sequence[str]) -> int:
    """Events stored for these runs (creating a run stores its planned events)."""
    import sqlalchemy as db
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable as Events

    if not run_ids:
        return 0
    with instance.event_log_storage.index_connection() as conn:  # type: ignore[attr-defined]
        query = (
            db.select(db.func.count()).select_from(Events).where(Events.c.run_id.in_(list(run_ids)))
        )
        return int(conn.execute(query).scalar() or 0)
