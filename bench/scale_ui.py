"""bench/scale.py, 3. the GraphQL queries the UI sends for partitions, over HTTP to a real
dagster-webserver, each timed and its answer checked."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from scale_env import (
    DAILY_ASSETS,
    LOCATION,
    QUERY_TIMEOUT_S,
    REPOSITORY,
    ROOT,
    SETUP_ASSETS,
    Figure,
    Layout,
    Report,
    repeated,
)

WEBSERVER_START_S = 180.0

# The queries the Dagster UI (dagster-webserver 1.13's bundle) sends, found by name in
# dagster_webserver/webapp/build; fragments inlined, fields kept.
PYTHON_ERROR = """
fragment PythonErrorFragment on PythonError {
  message stack errorChain { isExplicitLink error { message stack } }
}"""

# Asset graph: each node's live data; partitionStats is the partition bar of a node.
ASSET_GRAPH_LIVE = """
query AssetGraphLiveQuery($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys, loadMaterializations: true) {
    id opNames repository { id } assetKey { path }
    assetMaterializations(limit: 1) { timestamp runId stepKey }
    assetObservations(limit: 1) { timestamp runId stepKey }
    assetChecksOrError { ... on AssetChecks { checks {
      name canExecuteIndividually
      executionForLatestMaterialization {
        id runId status timestamp stepKey evaluation { severity }
      }
      partitionDefinition { name description }
    } } }
    partitionStats { numMaterialized numMaterializing numPartitions numFailed }
  }
  assetsLatestInfo(assetKeys: $assetKeys) {
    id assetKey { path } unstartedRunIds inProgressRunIds
    latestRun { id status startTime endTime }
  }
}"""

# Asset page and asset graph sidebar: the partition health bar and the partition list.
PARTITION_HEALTH = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        ... on TimePartitionStatuses {
          ranges { status startTime endTime startKey endKey }
        }
        ... on DefaultPartitionStatuses {
          materializedPartitions materializingPartitions failedPartitions
        }
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey primaryDimStartTime primaryDimEndTime
            secondaryDim {
              ... on TimePartitionStatuses {
                ranges { status startTime endTime startKey endKey }
              }
              ... on DefaultPartitionStatuses {
                materializedPartitions materializingPartitions failedPartitions
              }
            }
          }
        }
      }
    }
  }
}"""

# Job page, Partitions tab: every partition with its last run's status.
PARTITIONS_STATUS = (
    """
query PartitionsStatusQuery(
  $partitionSetName: String!, $repositorySelector: RepositorySelector!
) {
  partitionSetOrError(
    repositorySelector: $repositorySelector, partitionSetName: $partitionSetName
  ) {
    ... on PartitionSet {
      id name pipelineName
      partitionsOrError {
        ... on Partitions { results { name } }
        ...PythonErrorFragment
      }
      partitionStatusesOrError {
        ... on PartitionStatuses {
          results { id partitionName runStatus runDuration }
        }
        ...PythonErrorFragment
      }
      hasLaunchBackfillPermission
    }
    ... on PartitionSetNotFoundError { message }
    ...PythonErrorFragment
  }
}"""
    + PYTHON_ERROR
)

# Launchpad of an asset job: the partition picker's keys.
CONFIG_PARTITIONS = (
    """
query ConfigPartitionsAssetsQuery($params: PipelineSelector!, $assetKeys: [AssetKeyInput!]) {
  pipelineOrError(params: $params) {
    ...PythonErrorFragment
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on Pipeline {
      id
      partitionKeysOrError(selectedAssetKeys: $assetKeys) {
        ... on PartitionKeys { partitionKeys }
      }
    }
  }
  assetNodes(assetKeys: $assetKeys) { id partitionDefinition { name type } }
}"""
    + PYTHON_ERROR
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def webserver(layout: Layout) -> Iterator[tuple[str, float]]:
    """A dagster-webserver on a free port and the seconds until its code location loaded."""
    port = _free_port()
    log = (layout.root / "webserver.log").open("w")
    command = [
        sys.executable, "-m", "dagster_webserver",
        "-h", "127.0.0.1", "-p", str(port), "-w", str(layout.workspace_file),
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        _wait_for_location(proc, url, started + WEBSERVER_START_S, layout)
        yield url, time.perf_counter() - started
    finally:
        _stop(proc)
        log.close()


def _wait_for_location(
    proc: subprocess.Popen[bytes], url: str, deadline: float, layout: Layout
) -> None:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited ({proc.returncode}); see webserver.log")
        if time.perf_counter() > deadline:
            tail = (layout.root / "webserver.log").read_text()[-2000:]
            raise RuntimeError(f"dagster-webserver not ready in {WEBSERVER_START_S:.0f} s:\n{tail}")
        with contextlib.suppress(httpx.HTTPError, ValueError):
            body = httpx.post(url, json={"query": query}, timeout=5).json()
            entries = body["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                return
        time.sleep(0.25)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the webserver (it stops its code server), then kill its process group."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _error_messages(value: Any) -> list[str]:
    """GraphQL errors hide in typed results: anything carrying a ``message`` is one."""
    if isinstance(value, dict):
        found = [str(value["message"])[:300]] if "message" in value else []
        return found + [m for item in value.values() for m in _error_messages(item)]
    if isinstance(value, list):
        return [m for item in value for m in _error_messages(item)]
    return []


def _graphql(client: httpx.Client, url: str, query: str, variables: Mapping[str, Any]) -> Any:
    response = client.post(url, json={"query": query, "variables": variables})
    response.raise_for_status()
    body = response.json()
    problems = [str(e.get("message"))[:300] for e in body.get("errors") or []]
    problems += _error_messages(body.get("data"))
    if problems:
        raise RuntimeError("; ".join(problems))
    return body["data"]


def _days_between(start: str, end: str) -> int:
    return (date.fromisoformat(end) - date.fromisoformat(start)).days + 1


def _materialized_world_days(statuses: Mapping[str, Any]) -> int:
    """Materialized partitions of a date × world status: days of a range × worlds in it."""
    total = 0
    for span in statuses.get("ranges") or []:
        worlds = span["secondaryDim"].get("materializedPartitions") or []
        total += _days_between(span["primaryDimStartKey"], span["primaryDimEndKey"]) * len(worlds)
    return total


@dataclass(frozen=True)
class UiQuery:
    """One UI query to time and how to tell that its answer is right."""

    measure: str
    query: str
    variables: Mapping[str, Any]
    check: Callable[[Any], str | None]  # None when right, else what is wrong
    count: int


def ui_queries(layout: Layout, worlds: int) -> list[UiQuery]:
    days = len(layout.days)
    world_days = worlds * days
    made = worlds * len(layout.past_days)  # the tick's day is queued, not made
    repo = {"repositoryName": REPOSITORY, "repositoryLocationName": LOCATION}
    assets = [*SETUP_ASSETS, *DAILY_ASSETS]

    def graph(data: Any) -> str | None:
        stats = {tuple(n["assetKey"]["path"]): n["partitionStats"] for n in data["assetNodes"]}
        posts = stats.get(("posts",)) or {}
        avatars = stats.get(("character_avatars",)) or {}
        if (posts.get("numPartitions"), posts.get("numMaterialized")) != (world_days, made):
            return f"posts partitionStats {posts}, expected {made} of {world_days} materialized"
        if avatars.get("numMaterialized") != worlds:
            return f"character_avatars partitionStats {avatars}"
        return None

    def health_posts(data: Any) -> str | None:
        node = data["assetNodeOrError"]
        dims = {d["name"]: len(d["partitionKeys"]) for d in node["partitionKeysByDimension"]}
        if dims != {"date": days, "world": worlds}:
            return f"posts dimensions {dims}"
        done = _materialized_world_days(node["assetPartitionStatuses"])
        return None if done == made else f"posts: {done} materialized, not {made}"

    def health_avatars(data: Any) -> str | None:
        statuses = data["assetNodeOrError"]["assetPartitionStatuses"]
        done = len(statuses.get("materializedPartitions") or [])
        return None if done == worlds else f"character_avatars: {done} materialized"

    def partition_set(data: Any) -> str | None:
        found = data["partitionSetOrError"]
        names = len(found["partitionsOrError"]["results"])
        statuses = found["partitionStatusesOrError"]["results"]
        succeeded = sum(1 for s in statuses if s["runStatus"] == "SUCCESS")
        if names != world_days or len(statuses) != world_days:
            return f"daily_posts partition set: {names} partitions, {len(statuses)} statuses"
        # The latest day's runs are queued by the schedule tick, the others succeeded.
        return None if succeeded == made else f"{succeeded} SUCCESS statuses, not {made}"

    def keys(expected: int) -> Callable[[Any], str | None]:
        def check(data: Any) -> str | None:
            found = len(data["pipelineOrError"]["partitionKeysOrError"]["partitionKeys"])
            return None if found == expected else f"{found} partition keys, not {expected}"

        return check

    return [
        UiQuery(
            "asset graph live data: partitionStats, 6 assets",
            ASSET_GRAPH_LIVE,
            {"assetKeys": [{"path": [a]} for a in assets]},
            graph,
            world_days,
        ),
        UiQuery(
            "posts partition health (date × world)",
            PARTITION_HEALTH,
            {"assetKey": {"path": ["posts"]}},
            health_posts,
            world_days,
        ),
        UiQuery(
            "character_avatars partition health (worlds)",
            PARTITION_HEALTH,
            {"assetKey": {"path": ["character_avatars"]}},
            health_avatars,
            worlds,
        ),
        UiQuery(
            "daily_posts job: partition set statuses",
            PARTITIONS_STATUS,
            {"partitionSetName": "daily_posts_partition_set", "repositorySelector": repo},
            partition_set,
            world_days,
        ),
        UiQuery(
            "populate_world launchpad: dynamic world keys",
            CONFIG_PARTITIONS,
            {
                "params": {"pipelineName": "populate_world", **repo},
                "assetKeys": [{"path": [a]} for a in SETUP_ASSETS],
            },
            keys(worlds),
            worlds,
        ),
        UiQuery(
            "daily_posts launchpad: world × date keys",
            CONFIG_PARTITIONS,
            {
                "params": {"pipelineName": "daily_posts", **repo},
                "assetKeys": [{"path": [a]} for a in DAILY_ASSETS],
            },
            keys(world_days),
            world_days,
        ),
    ]


def bench_ui(report: Report, layout: Layout, worlds: int, reps: int) -> None:
    with webserver(layout) as (url, ready_s):
        report.add(Figure("ui", "dagster-webserver ready (location loaded)", ready_s))
        with httpx.Client(timeout=QUERY_TIMEOUT_S) as client:
            for item in ui_queries(layout, worlds):

                def call(item: UiQuery = item) -> Any:
                    return _graphql(client, url, item.query, item.variables)

                try:
                    first, median, data = repeated(call, reps)
                except (RuntimeError, httpx.HTTPError) as exc:
                    report.expect(False, f"UI query {item.measure}: {exc}")
                    continue
                report.add(Figure("ui", item.measure, median, first, reps, item.count))
                wrong = item.check(data)
                report.expect(wrong is None, f"UI query {item.measure}: {wrong}")
