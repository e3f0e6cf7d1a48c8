"""Worlds gone from the catalog: the sensor retires their partitions once nothing runs for
them, and never a large share at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, SensorResult, build_sensor_context
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._core.test_utils import create_run_for_test
from pipeline_helpers import Bed

from generia_pipelines.automation import new_worlds_sensor
from generia_pipelines.resources.catalog import CatalogResource
from generia_pipelines.retirement import plan_retirement, worlds_of_run

PROMPT = "A foggy harbour town of lighthouse keepers"


def _evaluate(instance: DagsterInstance, worlds_file: Path) -> SensorResult:
    context = build_sensor_context(
        instance=instance, resources={"catalog": CatalogResource(worlds_file=str(worlds_file))}
    )
    result = new_worlds_sensor(context)
    assert isinstance(result, SensorResult)
    return result


def _deleted(result: SensorResult) -> list[str]:
    return [
        key
        for request in result.dynamic_partitions_requests or []
        if type(request).__name__ == "DeleteDynamicPartitionsRequest"
        for key in request.partition_keys
    ]


@pytest.fixture(autouse=True)
def _no_backfill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENERIA_BACKFILL_DAYS", "0")
    monkeypatch.delenv("GENERIA_WORLD_ADDR", raising=False)


def test_a_world_removed_from_the_catalog_is_retired_once_its_runs_end(bed: Bed) -> None:
    worlds = [f"w-{index}" for index in range(6)]
    bed.write_worlds([{"id": w, "prompt": PROMPT} for w in worlds if w != "w-3"])
    bed.instance.add_dynamic_partitions("worlds", worlds)
    # A range run over w-2..w-4 is still going: w-3 waits for it.
    running = create_run_for_test(
        bed.instance,
        job_name="daily_posts",
        status=DagsterRunStatus.STARTED,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: "2026-11-20|w-2",
            ASSET_PARTITION_RANGE_END_TAG: "2026-11-20|w-4",
        },
    )
    assert _deleted(_evaluate(bed.instance, bed.worlds_file)) == []
    bed.instance.report_run_failed(running)
    assert _deleted(_evaluate(bed.instance, bed.worlds_file)) == ["w-3"]


def test_a_partition_added_by_hand_for_an_unknown_world_is_retired(bed: Bed) -> None:
    bed.write_worlds([{"id": "neon-harbor", "prompt": PROMPT}])
    bed.instance.add_dynamic_partitions("worlds", ["neon-harbor", "typo-world"])
    assert _deleted(_evaluate(bed.instance, bed.worlds_file)) == ["typo-world"]


def test_a_catalog_missing_most_worlds_retires_none(bed: Bed) -> None:
    worlds = [f"w-{index:02d}" for index in range(30)]
    bed.write_worlds([{"id": "w-00", "prompt": PROMPT}])
    bed.instance.add_dynamic_partitions("worlds", worlds)
    result = _evaluate(bed.instance, bed.worlds_file)
    assert _deleted(result) == []


def test_a_range_run_holds_every_world_between_its_ends() -> None:
    ordered = ["a", "b", "c", "d"]
    tags = {ASSET_PARTITION_RANGE_START_TAG: "b", ASSET_PARTITION_RANGE_END_TAG: "d"}
    assert worlds_of_run(tags, ordered) == {"b", "c", "d"}
    assert worlds_of_run({"dagster/partition": "2026-11-20|a"}, ordered) == {"a"}
    plan = plan_retirement(ordered, listed={"a", "b"}, busy={"c"})
    assert (plan.retire, plan.waiting, plan.held_back) == (["d"], ["c"], [])
