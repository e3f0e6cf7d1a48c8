"""Worlds that left the catalog: which of their partitions the sensor may retire, and when.

A world removed from the catalog (or a partition added by hand in the UI for a world the
catalog never had) would otherwise stay a partition forever, and the schedule would request
its days every morning, only for them to fail. The sensor retires such a partition once no
run that may work on the world is queued or in progress; what was materialized stays in the
event log. A catalog that suddenly lacks many worlds is more likely broken than emptied, so
a large share is never retired at once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

#: Runs that may still work on their worlds.
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
#: At most this share of the partitions is retired in one tick (and always up to the floor).
RETIRE_SHARE = 0.2
RETIRE_FLOOR = 10


def world_of_key(key: str) -> str:
    """The world of a ``worlds`` key (itself) or of a world × date key (``date|world``)."""
    return key.rpartition("|")[2]


def worlds_of_run(tags: dict[str, str], ordered: Sequence[str]) -> set[str]:
    """The worlds a run may work on, from its tags: its partition's, or its range's worlds
    in the partitions' order."""
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start is not None and end is not None:
        first, last = world_of_key(start), world_of_key(end)
        if first in ordered and last in ordered:
            low, high = sorted((ordered.index(first), ordered.index(last)))
            return set(ordered[low : high + 1])
        return {first, last}
    partition = tags.get("dagster/partition")
    return {world_of_key(partition)} if partition else set()


def worlds_in_flight(instance: DagsterInstance, ordered: Sequence[str]) -> set[str]:
    """Every world a queued or running run may be working on."""
    busy: set[str] = set()
    for run in instance.get_runs(RunsFilter(statuses=IN_FLIGHT)):
        busy |= worlds_of_run(dict(run.tags), ordered)
    return busy


@dataclass(frozen=True)
class Retirement:
    """What the sensor does with the partitions of worlds the catalog no longer lists."""

    retire: list[str]
    waiting: list[str]
    held_back: list[str]

    def messages(self, source: str) -> list[str]:
        lines = []
        if self.retire:
            lines.append(
                f"retiring the partitions of {len(self.retire)} worlds no longer in {source}: "
                f"{', '.join(self.retire[:20])}"
            )
        if self.waiting:
            lines.append(
                f"{len(self.waiting)} worlds no longer in {source} still have runs in flight; "
                f"retired once those end: {', '.join(self.waiting[:20])}"
            )
        if self.held_back:
            lines.append(
                f"{len(self.held_back)} partitions are missing from {source}, too many to be "
                "a removal: none retired; check the catalog, or delete the partitions in the "
                f"UI: {', '.join(self.held_back[:20])}"
            )
        return lines


def plan_retirement(
    ordered: Sequence[str], listed: Collection[str], busy: Collection[str]
) -> Retirement:
    """Partitions whose world is not ``listed``: retired unless ``busy``, and not at all when
    they are too large a share of the partitions."""
    gone = [world for world in ordered if world not in listed]
    if len(gone) > max(RETIRE_FLOOR, RETIRE_SHARE * len(ordered)):
        return Retirement([], [], gone)
    return Retirement(
        [world for world in gone if world not in busy],
        [world for world in gone if world in busy],
        [],
    )
