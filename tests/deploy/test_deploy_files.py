"""The deployment files say what they should, and say it the same way.

No servers here: ``deploy/dagster.yaml`` passes Dagster's own validation and resolves to
PostgreSQL storage and the queued coordinator; the Helm values repeat its limits and give
every Dagster process the same event-volume setting; the assets' backfill policy takes the
deployment's partitions per run; the Dockerfile serves the code location. The deployment
test then runs all of it for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import AssetsDefinition
from dagster._core.definitions.backfill_policy import BackfillPolicyType
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef

from generia_pipelines.assets.batch import PARTITIONS_PER_RUN_VAR, partitions_per_run
from generia_pipelines.assets.common import RUNWARE_POOL
from generia_pipelines.automation import WORLD_TAG
from generia_pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BATCH_SIZE_VAR = "DAGSTER_EVENT_BATCH_SIZE"
SUBSET_VAR = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
#: Run tags that once held one run per world; no limit may key on them any more.
PER_WORLD_TAGS = {WORLD_TAG, "dagster/partition", "dagster/partition/world"}


@pytest.fixture
def pg_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DAGSTER_PG_HOST": "db.example",
        "DAGSTER_PG_PORT": "5433",
        "DAGSTER_PG_USERNAME": "dagster",
        "DAGSTER_PG_PASSWORD": "secret",
        "DAGSTER_PG_DB": "dagster",
    }.items():
        monkeypatch.setenv(name, value)


def instance_yaml() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    return loaded


def helm_values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    return loaded


def env_of(entries: list[dict[str, str]]) -> dict[str, str]:
    """A Kubernetes ``env`` list (name/value entries) as a mapping."""
    return {entry["name"]: entry["value"] for entry in entries}


def code_location_env() -> dict[str, str]:
    (deployment,) = helm_values()["dagster-user-deployments"]["deployments"]
    return env_of(deployment["env"])


def test_dagster_yaml_is_a_valid_postgres_instance(pg_env: None) -> None:
    config, custom_class = dagster_instance_config(str(DEPLOY))
    assert custom_class is None
    ref = InstanceRef.from_dir(str(DEPLOY))
    # Runs and events over a kept-open connection; schedules as dagster-postgres has them.
    assert ref.run_storage_data is not None and ref.event_storage_data is not None
    assert (ref.run_storage_data.module_name, ref.run_storage_data.class_name) == (
        "generia_pipelines.pooled_storage",
        "PooledPostgresRunStorage",
    )
    assert (ref.event_storage_data.module_name, ref.event_storage_data.class_name) == (
        "generia_pipelines.pooled_storage",
        "PooledPostgresEventLogStorage",
    )
    assert ref.schedule_storage_data is not None
    assert ref.schedule_storage_data.module_name == "dagster_postgres.schedule_storage"
    assert ref.run_coordinator_data is not None
    assert ref.run_coordinator_data.class_name == "QueuedRunCoordinator"
    for section in ("run_storage", "event_log_storage", "schedule_storage"):
        storage = dict(config[section]["config"]["postgres_db"])
        assert storage.pop("scheme") == "postgresql+psycopg2"
        assert storage == {
            field: {"env": variable}
            for field, variable in {
                "hostname": "DAGSTER_PG_HOST",
                "port": "DAGSTER_PG_PORT",
                "username": "DAGSTER_PG_USERNAME",
                "password": "DAGSTER_PG_PASSWORD",
                "db_name": "DAGSTER_PG_DB",
            }.items()
        }


def test_dagster_yaml_has_no_per_world_run_limit_and_pools_the_providers() -> None:
    """Runs of one world may run at once (the ledger's claims keep exactly-once); the queue
    bounds runs in flight and the pools bound the steps that call the providers."""
    config = instance_yaml()
    runs = config["concurrency"]["runs"]
    limits = runs.get("tag_concurrency_limits") or []
    assert not [lim for lim in limits if lim["key"] in PER_WORLD_TAGS], limits
    assert runs["max_concurrent_runs"] >= 2
    pools = config["concurrency"]["pools"]
    assert pools["granularity"] == "op"
    assert pools["default_limit"] >= 1
    assert runs["max_concurrent_runs"] >= pools["default_limit"]
    assert config["run_retries"] == {
        "enabled": True,
        "max_retries": 2,
        "retry_on_asset_or_op_failure": False,
    }
    assert config["run_monitoring"]["enabled"] is True
    # The comments say why, and how the provider limits add up across runs.
    text = (DEPLOY / "dagster.yaml").read_text()
    for phrase in ("ledger's claims", "concurrency set runware", "max_concurrency", BATCH_SIZE_VAR):
        assert phrase in text, phrase


def test_the_assets_use_only_the_pool_the_deployment_configures() -> None:
    assets = [a for a in defs.assets or [] if isinstance(a, AssetsDefinition)]
    assert {asset.op.pool for asset in assets} - {None} == {RUNWARE_POOL}
    for path in (DEPLOY / "dagster.yaml", DEPLOY / "helm" / "values.yaml"):
        text = path.read_text()
        assert f"dagster instance concurrency set {RUNWARE_POOL} " in text, path
        assert "concurrency set text_model" not in text, path


def test_helm_values_repeat_the_instance_limits() -> None:
    instance, values = instance_yaml(), helm_values()
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    assert (
        concurrency["runs"]["maxConcurrentRuns"]
        == instance["concurrency"]["runs"]["max_concurrent_runs"]
    )
    assert "tagConcurrencyLimits" not in concurrency["runs"]
    assert "tag_concurrency_limits" not in instance["concurrency"]["runs"]
    assert "tagConcurrencyLimits" not in json.dumps(values["dagsterDaemon"])
    pools = instance["concurrency"]["pools"]
    assert concurrency["pools"] == {
        "defaultLimit": pools["default_limit"],
        "granularity": pools["granularity"],
    }
    daemon = values["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert daemon["runRetries"] == {
        "enabled": True,
        "maxRetries": instance["run_retries"]["max_retries"],
        "retryOnAssetOrOpFailure": False,
    }
    assert daemon["runMonitoring"]["enabled"] is True
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"


def test_helm_sets_the_event_batch_size_for_every_dagster_process() -> None:
    """Planned events are written where runs are created (the daemon for schedules, sensors
    and backfills, the webserver for the UI's launches), materializations by run workers:
    all of them get the same DAGSTER_EVENT_BATCH_SIZE. The partition-subset switch would hide
    failed world-days (tests/pipeline/test_event_volume.py) and is set nowhere."""
    values = helm_values()
    webserver = env_of(values["dagsterWebserver"]["env"])
    daemon = env_of(values["dagsterDaemon"]["env"])
    code = code_location_env()
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]["envVars"]
    workers = dict(entry.split("=", 1) for entry in launcher)
    sizes = {
        "webserver": webserver.get(BATCH_SIZE_VAR),
        "daemon": daemon.get(BATCH_SIZE_VAR),
        "code server": code.get(BATCH_SIZE_VAR),
        "run workers": workers.get(BATCH_SIZE_VAR),
    }
    assert len(set(sizes.values())) == 1, sizes
    (size,) = set(sizes.values())
    assert size is not None and int(size) > 0, sizes
    for path in (DEPLOY / "dagster.yaml", DEPLOY / "helm" / "values.yaml", REPO / "Dockerfile"):
        text = path.read_text()
        assert f"{SUBSET_VAR}=" not in text and f"name: {SUBSET_VAR}" not in text, path


def test_the_assets_backfill_policy_takes_the_deployments_partitions_per_run() -> None:
    """The code location of the Helm values, loaded with its GENERIA_PARTITIONS_PER_RUN: every
    asset's BackfillPolicy cuts backfills into runs of that many partitions."""
    setting = code_location_env()[PARTITIONS_PER_RUN_VAR]
    assert partitions_per_run(setting) == int(setting)
    probe = (
        "import json\n"
        "from dagster import AssetsDefinition\n"
        "from generia_pipelines.definitions import defs\n"
        "print(json.dumps({a.op.name: [a.backfill_policy.policy_type.value,"
        " a.backfill_policy.max_partitions_per_run] for a in defs.assets or []"
        " if isinstance(a, AssetsDefinition) and a.backfill_policy}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENERIA_")}
    env[PARTITIONS_PER_RUN_VAR] = setting
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    policies = json.loads(out.stdout.strip().splitlines()[-1])
    steps = {a.op.name for a in defs.assets or [] if isinstance(a, AssetsDefinition)}
    assert set(policies) == steps, policies
    assert policies == {
        step: [BackfillPolicyType.MULTI_RUN.value, int(setting)] for step in steps
    }, policies


def test_helm_user_deployment_serves_this_code_location() -> None:
    (deployment,) = helm_values()["dagster-user-deployments"]["deployments"]
    args = deployment["codeServerArgs"]
    assert args[args.index("-m") + 1] == "generia_pipelines.definitions"
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert {"name": "generia-secrets"} in deployment["envSecrets"]


def test_dockerfile_serves_the_code_location_on_the_helm_port() -> None:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    (cmd,) = [json.loads(line[4:]) for line in lines if line.startswith("CMD ")]
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert cmd[cmd.index("-m") + 1] == "generia_pipelines.definitions"
    (deployment,) = helm_values()["dagster-user-deployments"]["deployments"]
    assert cmd[cmd.index("-p") + 1] == str(deployment["port"])
    for line in lines:
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            for source in sources:
                assert (REPO / source).exists(), source


def test_workspace_loads_the_code_server_named_by_the_environment() -> None:
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    assert server["host"] == {"env": "GENERIA_CODE_SERVER_HOST"}
    assert server["port"] == {"env": "GENERIA_CODE_SERVER_PORT"}
    assert server["location_name"] == "generia_pipelines"
