"""The deployment files say what they should, and say it the same way.

No processes here: ``deploy/dagster.yaml`` passes Dagster's own validation and resolves to
PostgreSQL storage and the queued coordinator; the Helm values repeat its limits; the
Dockerfile serves the code location. The deployment test then runs all of it for real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import AssetsDefinition
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef

from generia_pipelines.assets.common import RUNWARE_POOL, TEXT_POOL
from generia_pipelines.automation import WORLD_TAG, daily_posts, populate_world
from generia_pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PER_VALUE = {"applyLimitPerUniqueValue": True}


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


def test_dagster_yaml_is_a_valid_postgres_instance(pg_env: None) -> None:
    config, custom_class = dagster_instance_config(str(DEPLOY))
    assert custom_class is None
    ref = InstanceRef.from_dir(str(DEPLOY))
    assert ref.run_storage_data.module_name.startswith("dagster_postgres")
    assert ref.event_storage_data.module_name.startswith("dagster_postgres")
    assert ref.schedule_storage_data.module_name.startswith("dagster_postgres")
    assert ref.run_coordinator_data is not None
    assert ref.run_coordinator_data.class_name == "QueuedRunCoordinator"
    storage = config["storage"]["postgres"]["postgres_db"]
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


def test_dagster_yaml_limits_one_run_per_world_and_pools_the_providers() -> None:
    config = instance_yaml()
    runs = config["concurrency"]["runs"]
    limits = {
        (lim["key"], json.dumps(lim.get("value"))): lim["limit"]
        for lim in runs["tag_concurrency_limits"]
    }
    for key in (WORLD_TAG, "dagster/partition", "dagster/partition/world"):
        assert limits[(key, json.dumps(PER_VALUE))] == 1, key
    assert runs["max_concurrent_runs"] >= 2
    assert config["concurrency"]["pools"]["granularity"] == "op"
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    assert config["run_retries"] == {
        "enabled": True,
        "max_retries": 2,
        "retry_on_asset_or_op_failure": False,
    }
    assert config["run_monitoring"]["enabled"] is True


def test_every_job_run_carries_its_world_tag() -> None:
    """The limit keyed on ``generia/world`` only works if both jobs tag their runs with it."""
    for job, key in (
        (populate_world, "neon-harbor"),
        (daily_posts, "2026-11-20|neon-harbor"),
    ):
        config = defs.resolve_job_def(job.name).partitioned_config
        assert config is not None, job.name
        assert config.get_tags_for_partition_key(key)[WORLD_TAG] == "neon-harbor"


def test_the_assets_use_only_the_pools_the_deployment_configures() -> None:
    pools = {asset.op.pool for asset in defs.assets or [] if isinstance(asset, AssetsDefinition)}
    assert pools - {None} == {RUNWARE_POOL, TEXT_POOL}


def test_helm_values_repeat_the_instance_limits() -> None:
    instance, values = instance_yaml(), helm_values()
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    assert (
        concurrency["runs"]["maxConcurrentRuns"]
        == instance["concurrency"]["runs"]["max_concurrent_runs"]
    )
    assert [
        (lim["key"], lim["value"], lim["limit"])
        for lim in concurrency["runs"]["tagConcurrencyLimits"]
    ] == [
        (lim["key"], lim["value"], lim["limit"])
        for lim in instance["concurrency"]["runs"]["tag_concurrency_limits"]
    ]
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
