"""A production-shaped Dagster deployment on this machine, for the deployment and browser tests.

What runs, as in production (deploy/): a scratch PostgreSQL database holding Dagster's
storage and the generation ledger; ``deploy/dagster.yaml`` as the instance, verbatim; the
code location as its own gRPC code server; ``dagster-webserver`` and ``dagster-daemon``
loading ``deploy/workspace.yaml``; the local Generia stack with the Runware stand-in (in this
process, on free ports) as the platform. Each process has its own process group and log file,
and everything is stopped and dropped at the end, also on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from generia_pipelines.local.runware_standin import RunwareComponent
from generia_pipelines.local.stack import StackConfig, ThreadedStack

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
#: The figures the deployment tests measure, kept for CI next to the browser's screenshots.
FIGURES = REPO / "test-artifacts" / "deploy" / "figures.txt"
BIN = Path(sys.executable).parent
LOCATION = "generia_pipelines"
REPOSITORY = "__repository__"
PG_HOST = os.environ.get("GENERIA_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("GENERIA_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("GENERIA_TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("GENERIA_TEST_PG_PASSWORD", "")
#: Variables of the caller that would point the deployment elsewhere.
_FOREIGN_PREFIXES = ("GENERIA_", "RUNWARE_", "DAGSTER_")

#: Partitions per run (GENERIA_PARTITIONS_PER_RUN) of the test deployments: small, so that a
#: few worlds already make several range runs.
BATCH_K = 2

#: Run statuses after which nothing more happens to a run.
FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})

T = TypeVar("T")


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used here, or None when it can."""
    try:
        import psycopg2
    except ImportError:  # pragma: no cover - a dependency of dagster-postgres
        return "psycopg2 is not installed"
    try:
        psycopg2.connect(
            host=PG_HOST,
            port=PG_PORT,
            user=PG_USER,
            password=PG_PASSWORD,
            dbname="postgres",
            connect_timeout=5,
        ).close()
    except psycopg2.Error as exc:
        return f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable: {exc}".strip()
    return None


def require_postgres() -> None:
    """Skip without PostgreSQL, except in CI, where its absence is a failure."""
    import pytest

    problem = postgres_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{problem} (CI must provide PostgreSQL on {PG_HOST}:{PG_PORT})")
    pytest.skip(problem)


def _admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, dbname="postgres"
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty database ``generia_test_<random>``, dropped (connections and all) after."""
    name = f"generia_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end and a start at the same instant do not
    overlap)."""
    spans = list(intervals)
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def report(line: str) -> None:
    """Print a measured figure and keep it in ``test-artifacts/deploy/figures.txt``."""
    print(f"\n{line}")
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with FIGURES.open("a", encoding="utf-8") as out:
        out.write(f"{stamp} {line}\n")


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float, every_s: float = 1.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after the bound."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # a probe may fail while things start
            last_error = exc
        if time.monotonic() >= deadline:
            hint = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"{what}: not reached within {timeout_s:.0f} s{hint}")
        time.sleep(every_s)


@dataclass
class Service:
    """One long-running process of the deployment, in its own process group."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 15.0) -> None:
        """Signal the whole group (the code server's run workers too); SIGKILL after the bound."""
        if self.process is None:
            return
        process, self.process = self.process, None
        for step in (sig, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, step)
            try:
                process.wait(timeout=timeout_s)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # stragglers of the group
            os.killpg(process.pid, signal.SIGKILL)

    def kill_leader(self) -> None:
        """SIGKILL only the process itself, as an OOM kill would; its children live on."""
        assert self.process is not None
        process, self.process = self.process, None
        process.kill()
        process.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class GraphQLError(RuntimeError):
    """The webserver answered a GraphQL request with errors."""


@dataclass
class Deployment:
    """The running deployment and the handles tests need."""

    root: Path
    home: Path
    database: str
    stack: ThreadedStack
    runware: RunwareComponent
    worlds_file: Path
    env: dict[str, str]
    url: str
    services: dict[str, Service] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60.0))
    catalog: list[dict[str, Any]] = field(default_factory=list)

    # -- the platform and the catalog ------------------------------------------------------
    def add_worlds(self, worlds: Sequence[Mapping[str, Any]]) -> None:
        """Append worlds to the catalog file the code location reads."""
        self.catalog.extend(dict(w) for w in worlds)
        text = yaml.safe_dump({"worlds": self.catalog}, sort_keys=False)
        self.worlds_file.write_text(text, encoding="utf-8")

    def platform(self, world_id: str, what: str) -> list[dict[str, Any]]:
        """The stack's own view of a world: ``characters``, ``posts`` or ``media``."""
        response = self.http.get(f"{self.stack.http_url}/_admin/worlds/{world_id}/{what}")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()
        return items

    @property
    def images_paid(self) -> int:
        standin = self.runware.standin
        return standin.stats.images_generated if standin is not None else 0

    @property
    def ledger_url(self) -> str:
        return self.env["GENERIA_LEDGER_URL"]

    # -- Dagster ---------------------------------------------------------------------------
    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(
            f"{self.url}/graphql", json={"query": query, "variables": dict(variables or {})}
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(f"GraphQL errors: {body['errors']}")
        data: dict[str, Any] = body["data"]
        return data

    @property
    def repository_selector(self) -> dict[str, str]:
        return {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}

    def service(self, name: str) -> Service:
        return self.services[name]

    def start_daemon(self) -> Service:
        daemon = Service(
            "daemon",
            [str(BIN / "dagster-daemon"), "run", "-w", str(DEPLOY / "workspace.yaml")],
            self.env,
            self.root / "logs" / "daemon.log",
            self.root,
        ).start()
        self.services["daemon"] = daemon
        return daemon

    # -- GraphQL operations the tests use ------------------------------------------------------
    def add_world_partitions(self, worlds: Sequence[str]) -> None:
        for world in worlds:
            data = self.graphql(
                """
                mutation($repo: RepositorySelector!, $key: String!) {
                  addDynamicPartition(repositorySelector: $repo, partitionsDefName: "worlds",
                                      partitionKey: $key) {
                    __typename ... on PythonError { message }
                  }
                }
                """,
                {"repo": self.repository_selector, "key": world},
            )
            outcome = data["addDynamicPartition"]
            assert outcome["__typename"] == "AddDynamicPartitionSuccess", outcome

    def set_pool_limit(self, pool: str, limit: int) -> None:
        data = self.graphql(
            "mutation($k: String!, $n: Int!) "
            "{ setConcurrencyLimit(concurrencyKey: $k, limit: $n) }",
            {"k": pool, "n": limit},
        )
        assert data["setConcurrencyLimit"] is True

    def pool_limit(self, pool: str) -> int | None:
        data = self.graphql(
            "query($k: String!) { instance { concurrencyLimit(concurrencyKey: $k) { limit } } }",
            {"k": pool},
        )
        limit: int | None = data["instance"]["concurrencyLimit"]["limit"]
        return limit

    def launch_backfill(self, job: str, partitions: Sequence[str]) -> str:
        """A job backfill, as the job's "Launch backfill" in the UI makes one."""
        data = self.graphql(
            """
            mutation($params: LaunchBackfillParams!) {
              launchPartitionBackfill(backfillParams: $params) {
                __typename ... on LaunchBackfillSuccess { backfillId }
                ... on PythonError { message }
              }
            }
            """,
            {
                "params": {
                    "selector": {
                        "partitionSetName": f"{job}_partition_set",
                        "repositorySelector": self.repository_selector,
                    },
                    "partitionNames": list(partitions),
                }
            },
        )
        outcome = data["launchPartitionBackfill"]
        assert outcome["__typename"] == "LaunchBackfillSuccess", outcome
        backfill_id: str = outcome["backfillId"]
        return backfill_id

    def launch_asset_backfill(self, assets: Sequence[str], partitions: Sequence[str]) -> str:
        """An asset backfill, as "Materialize" of selected partitions in the asset graph makes
        one: the daemon cuts it into runs by the assets' backfill policy."""
        data = self.graphql(
            """
            mutation($params: LaunchBackfillParams!) {
              launchPartitionBackfill(backfillParams: $params) {
                __typename ... on LaunchBackfillSuccess { backfillId }
                ... on PythonError { message }
              }
            }
            """,
            {
                "params": {
                    "assetSelection": [{"path": [asset]} for asset in assets],
                    "partitionNames": list(partitions),
                }
            },
        )
        outcome = data["launchPartitionBackfill"]
        assert outcome["__typename"] == "LaunchBackfillSuccess", outcome
        backfill_id: str = outcome["backfillId"]
        return backfill_id

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        data = self.graphql(
            """
            query($id: String!) { partitionBackfillOrError(backfillId: $id) {
              __typename ... on PartitionBackfill {
                status numPartitions
                partitionStatuses { results { partitionName runId runStatus } }
              }
            } }
            """,
            {"id": backfill_id},
        )
        backfill: dict[str, Any] = data["partitionBackfillOrError"]
        return backfill

    def runs(self, tags: Mapping[str, str]) -> list[dict[str, Any]]:
        """Runs carrying all ``tags``, with their tags and times."""
        data = self.graphql(
            """
            query($filter: RunsFilter!) { runsOrError(filter: $filter) { ... on Runs { results {
              runId jobName status creationTime startTime endTime tags { key value }
            } } } }
            """,
            {"filter": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}},
        )
        runs: list[dict[str, Any]] = data["runsOrError"]["results"]
        for run in runs:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return runs

    def run(self, run_id: str) -> dict[str, Any]:
        data = self.graphql(
            """
            query($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
              runId jobName status startTime endTime tags { key value }
              stepStats { stepKey status startTime endTime }
            } } }
            """,
            {"id": run_id},
        )
        run: dict[str, Any] = data["runOrError"]
        run["tags"] = {t["key"]: t["value"] for t in run.get("tags", [])}
        return run

    def run_events(self, run_id: str) -> list[dict[str, Any]]:
        data = self.graphql(
            """
            query($id: ID!) { logsForRun(runId: $id, limit: 1000) { ... on EventConnection {
              events { __typename
                ... on MessageEvent { timestamp message stepKey }
                ... on LogsCapturedEvent { stepKeys pid }
              }
            } } }
            """,
            {"id": run_id},
        )
        events: list[dict[str, Any]] = data["logsForRun"]["events"]
        return events

    def run_window(self, run_id: str) -> tuple[float, float, float]:
        """When a run was launched (left the queue), started executing, and ended."""
        run = self.run(run_id)
        launched = next(
            e["timestamp"] for e in self.run_events(run_id) if e["__typename"] == "RunStartingEvent"
        )
        return float(launched) / 1000.0, float(run["startTime"]), float(run["endTime"])

    def wait_run(self, run_id: str, timeout_s: float = 120) -> dict[str, Any]:
        """Wait for a run to finish; return it (whatever its status)."""

        def finished() -> dict[str, Any] | None:
            run = self.run(run_id)
            return run if run["status"] in FINISHED else None

        return wait_for(f"run {run_id} to finish", finished, timeout_s)

    def partition_tags(self, job: str, partition: str) -> dict[str, str]:
        """The tags the launchpad puts on a run of ``partition`` (from the job's partitions)."""
        data = self.graphql(
            """
            query($repo: RepositorySelector!, $set: String!, $p: String!) {
              partitionSetOrError(repositorySelector: $repo, partitionSetName: $set) {
                ... on PartitionSet { partition(partitionName: $p) {
                  tagsOrError { ... on PartitionTags { results { key value } } }
                } }
              }
            }
            """,
            {"repo": self.repository_selector, "set": f"{job}_partition_set", "p": partition},
        )
        results = data["partitionSetOrError"]["partition"]["tagsOrError"]["results"]
        return {t["key"]: t["value"] for t in results}

    def launch_run(
        self, job: str, partition: str, run_config: Mapping[str, Any] | None = None
    ) -> str:
        """Launch one partition of ``job`` as the launchpad does; returns the run id."""
        tags = self.partition_tags(job, partition)
        data = self.graphql(
            """
            mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
              __typename ... on LaunchRunSuccess { run { runId } }
              ... on PythonError { message }
              ... on RunConfigValidationInvalid { errors { message } }
            } }
            """,
            {
                "params": {
                    "selector": {**self.repository_selector, "jobName": job},
                    "runConfigData": dict(run_config or {}),
                    "executionMetadata": {
                        "tags": [{"key": k, "value": v} for k, v in tags.items()]
                    },
                }
            },
        )
        outcome = data["launchRun"]
        assert outcome["__typename"] == "LaunchRunSuccess", outcome
        run_id: str = outcome["run"]["runId"]
        return run_id

    def sensor(self, name: str, start: bool) -> str:
        """Start a sensor, or reset it to its default (stopped); returns its status."""
        selector = {**self.repository_selector, "sensorName": name}
        field = "startSensor" if start else "resetSensor"
        data = self.graphql(
            f"""
            mutation($s: SensorSelector!) {{ {field}(sensorSelector: $s) {{
              __typename ... on Sensor {{ sensorState {{ status }} }}
              ... on PythonError {{ message }}
            }} }}
            """,
            {"s": selector},
        )
        outcome = data[field]
        assert outcome["__typename"] == "Sensor", outcome
        status: str = outcome["sensorState"]["status"]
        return status

    def schedule(self, name: str, start: bool) -> str:
        """Start a schedule, or reset it to its default (stopped); returns its status."""
        selector = {**self.repository_selector, "scheduleName": name}
        field = "startSchedule" if start else "resetSchedule"
        data = self.graphql(
            f"""
            mutation($s: ScheduleSelector!) {{ {field}(scheduleSelector: $s) {{
              __typename ... on ScheduleStateResult {{ scheduleState {{ status }} }}
              ... on PythonError {{ message }}
            }} }}
            """,
            {"s": selector},
        )
        outcome = data[field]
        assert outcome["__typename"] == "ScheduleStateResult", outcome
        status: str = outcome["scheduleState"]["status"]
        return status

    def backdate_schedule(self, name: str, started_at: float) -> None:
        """Make a running schedule look started at ``started_at`` (a UTC timestamp), so that
        a daemon that has not evaluated it yet catches up the ticks since then, as after an
        outage. Only for a daemon that is down: a running one keeps its own iteration times.
        """
        from dagster._core.definitions.run_request import InstigatorType
        from dagster._core.scheduler.instigation import ScheduleInstigatorData

        with self.instance() as instance:
            states = instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
            (state,) = [s for s in states if s.name == name and s.is_running]
            data = state.instigator_data
            assert isinstance(data, ScheduleInstigatorData), data
            instance.update_instigator_state(
                state.with_data(ScheduleInstigatorData(data.cron_schedule, started_at, None))
            )

    @contextlib.contextmanager
    def instance(self) -> Iterator[Any]:
        """The deployment's DagsterInstance (its dagster.yaml, its PostgreSQL database), in
        this process, to read what the webserver's GraphQL API does not show simply."""
        from dagster import DagsterInstance
        from dagster._utils.env import environ

        names = [k for k in self.env if k.startswith("DAGSTER_PG_")]
        with (
            environ({k: self.env[k] for k in names}),
            DagsterInstance.from_config(str(self.home)) as instance,
        ):
            yield instance

    def materialized_partitions(self, asset: str, partitions: Sequence[str]) -> list[str]:
        """The partitions of ``asset`` among ``partitions`` with a materialization (one per
        materialization: a partition materialized twice appears twice)."""
        data = self.graphql(
            """
            query($key: AssetKeyInput!, $p: [String!]) { assetOrError(assetKey: $key) {
              ... on Asset { assetMaterializations(partitions: $p) { partition } }
            } }
            """,
            {"key": {"path": [asset]}, "p": list(partitions)},
        )
        return [m["partition"] for m in data["assetOrError"]["assetMaterializations"]]

    def asset_checks(self, asset: str) -> list[str]:
        data = self.graphql(
            """
            query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
              assetChecksOrError { ... on AssetChecks { checks { name } } }
            } } }
            """,
            {"key": {"path": [asset]}},
        )
        checks = data["assetNodeOrError"]["assetChecksOrError"]["checks"]
        return [c["name"] for c in checks]

    def check_executions(self, asset: str, check: str) -> list[dict[str, Any]]:
        data = self.graphql(
            """
            query($key: AssetKeyInput!, $check: String!) {
              assetCheckExecutions(assetKey: $key, checkName: $check, limit: 1000) {
                runId status partition
              }
            }
            """,
            {"key": {"path": [asset]}, "check": check},
        )
        executions: list[dict[str, Any]] = data["assetCheckExecutions"]
        return executions

    def run_partitions(self, run_id: str) -> list[str]:
        """The partitions a run set out to materialize (from its planned events): one, or a
        range run's worlds or world-days."""
        from dagster import DagsterEventType

        with self.instance() as instance:
            records = instance.get_records_for_run(
                run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=100_000
            ).records
        keys = {
            str(r.event_log_entry.dagster_event.partition)
            for r in records
            if r.event_log_entry.dagster_event is not None
        }
        return sorted(keys)

    def logs(self) -> str:
        """Where each process logs, and the last lines of each (for failure messages)."""
        parts = [f"--- {s.name} ({s.log_path}) ---\n{s.tail()}" for s in self.services.values()]
        return "\n".join(parts)


def batched_env(per_run: int = BATCH_K) -> dict[str, str]:
    """The variables that make a deployment cut its work into runs of ``per_run``
    partitions: read where the definitions load (the code server, which evaluates the
    schedule and the sensor, and its run workers)."""
    return {"GENERIA_PARTITIONS_PER_RUN": str(per_run)}


def helm_dagster_env() -> dict[str, str]:
    """What deploy/helm/values.yaml sets for every Dagster process (the daemon's env; a test
    of the deployment files checks the webserver and the run workers get the same)."""
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    return {e["name"]: str(e["value"]) for e in values["dagsterDaemon"].get("env", [])}


def deployment_env(
    home: Path, database: str, stack_env: Mapping[str, str], worlds_file: Path
) -> dict[str, str]:
    """The environment of every deployment process: the caller's, cleaned of anything that
    points elsewhere, plus the Dagster settings of the Helm values, the instance, the code
    server, the ledger and the local stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    env.update(helm_dagster_env())
    auth = f"{PG_USER}:{PG_PASSWORD}" if PG_PASSWORD else PG_USER
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": PG_HOST,
            "DAGSTER_PG_PORT": str(PG_PORT),
            "DAGSTER_PG_USERNAME": PG_USER,
            "DAGSTER_PG_PASSWORD": PG_PASSWORD,
            "DAGSTER_PG_DB": database,
            "GENERIA_CODE_SERVER_HOST": "127.0.0.1",
            "GENERIA_CODE_SERVER_PORT": str(free_port()),
            "GENERIA_LEDGER_URL": f"postgresql+psycopg2://{auth}@{PG_HOST}:{PG_PORT}/{database}",
            "GENERIA_WORLDS_FILE": str(worlds_file),
            "GENERIA_TEXT_BACKEND": "local",
            # The tests request each world's days themselves; the sensor's own backfill of a
            # new world's latest day (the default, 1) is tested in tests/e2e.
            "GENERIA_BACKFILL_DAYS": "0",
            # A week of daily partitions: recent days exist whatever the machine's clock says.
            "GENERIA_POSTS_START_DATE": (datetime.now(UTC).date() - timedelta(days=7)).isoformat(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(stack_env)
    env.pop("GENERIA_WORLD_ADDR", None)  # the catalog is the worlds file
    return env


def code_server_command(host: str, port: int) -> list[str]:
    """The Docker image's command (its ``CMD``), on this host and port, from this venv."""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("CMD "):
            command: list[str] = json.loads(line[4:])
            break
    else:  # pragma: no cover - the Dockerfile always has one
        raise AssertionError("the Dockerfile has no CMD")
    options = {"-h": host, "-p": str(port)}
    command = [
        options.get(previous, arg)
        for previous, arg in zip(["", *command[:-1]], command, strict=True)
    ]
    return [str(BIN / command[0]), *command[1:]]


def _code_server_serving(port: int) -> bool:
    """The port accepts connections and the server answers Dagster's ping."""
    from dagster._grpc.client import DagsterGrpcClient

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1.0):
        return DagsterGrpcClient(port=port, host="127.0.0.1").ping("up")["echo"] == "up"
    return False


def _location_loaded(deployment: Deployment) -> bool:
    data = deployment.graphql(
        """
        query { workspaceOrError { __typename ... on Workspace { locationEntries {
          name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
        } } } }
        """
    )
    entries = data["workspaceOrError"]["locationEntries"]
    entry = next(e for e in entries if e["name"] == LOCATION)
    error = entry["locationOrLoadError"]
    if error and error["__typename"] == "PythonError":
        raise RuntimeError(f"code location failed to load: {error['message']}")
    return bool(entry["loadStatus"] == "LOADED" and error)


def daemons_healthy(deployment: Deployment) -> bool:
    data = deployment.graphql(
        """
        query { instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }
        """
    )
    statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]
    return all(s["healthy"] for s in statuses if s["required"])


@contextlib.contextmanager
def deployment(
    root: Path,
    worlds: Sequence[Mapping[str, Any]] = (),
    env: Mapping[str, str] | None = None,
) -> Iterator[Deployment]:
    """Start the whole deployment under ``root``, every process with ``env`` on top of its
    usual environment; stop and drop everything on exit."""
    overrides = dict(env or {})
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    home = root / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    worlds_file = root / "worlds.yaml"

    with contextlib.ExitStack() as stack_of_exits:
        database = stack_of_exits.enter_context(scratch_database())
        runware = RunwareComponent()
        stack = ThreadedStack(StackConfig(data_dir=root / "stack"), [runware]).start()
        stack_of_exits.callback(stack.stop)
        env = {**deployment_env(home, database, stack.env, worlds_file), **overrides}
        web_port = free_port()
        dep = Deployment(
            root=root,
            home=home,
            database=database,
            stack=stack,
            runware=runware,
            worlds_file=worlds_file,
            env=env,
            url=f"http://127.0.0.1:{web_port}",
        )
        stack_of_exits.callback(dep.http.close)
        dep.add_worlds(worlds)
        print(f"\ndeployment under {root} (logs in {root / 'logs'}), database {database}")

        # The Helm chart's migrate job: create the schema once, before anyone races for it.
        subprocess.run(
            [str(BIN / "dagster"), "instance", "migrate"],
            env=env,
            cwd=root,
            check=True,
            capture_output=True,
            timeout=120,
        )

        def stop_all() -> None:
            for service in reversed(list(dep.services.values())):
                service.stop()

        stack_of_exits.callback(stop_all)
        code_port = int(env["GENERIA_CODE_SERVER_PORT"])
        dep.services["code"] = Service(
            "code",
            code_server_command("127.0.0.1", code_port),
            env,
            root / "logs" / "code-server.log",
            root,
        ).start()
        try:
            wait_for("code server serving", lambda: _code_server_serving(code_port), 90, 0.5)
            dep.services["webserver"] = Service(
                "webserver",
                [
                    str(BIN / "dagster-webserver"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(web_port),
                    "-w",
                    str(DEPLOY / "workspace.yaml"),
                ],
                env,
                root / "logs" / "webserver.log",
                root,
            ).start()
            dep.start_daemon()
            wait_for("webserver up", lambda: dep.http.get(f"{dep.url}/server_info").is_success, 90)
            wait_for("code location loaded", lambda: _location_loaded(dep), 60)
            wait_for("daemons healthy", lambda: daemons_healthy(dep), 90)
        except BaseException:
            print(dep.logs(), file=sys.stderr)
            raise
        yield dep
