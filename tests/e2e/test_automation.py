"""The sensor, the schedule and the code location as Dagster loads them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    RunRequest,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
    partition_loading_context,
)
from pipeline_helpers import Bed, covered

from generia_pipelines.automation import daily_posts_schedule, new_worlds_sensor, post_days
from generia_pipelines.definitions import defs
from generia_pipelines.resources.catalog import CatalogResource

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "A salt desert of mirages and wind-powered caravans"


def _evaluate(
    instance: DagsterInstance, worlds_file: Path, cursor: str | None = None
) -> SensorResult:
    context = build_sensor_context(
        instance=instance,
        resources={"catalog": CatalogResource(worlds_file=str(worlds_file))},
        cursor=cursor,
    )
    result = new_worlds_sensor(context)
    assert isinstance(result, SensorResult)
    return result


def test_sensor_adds_new_worlds_and_requests_their_setup(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GENERIA_WORLD_ADDR", raising=False)
    monkeypatch.setenv("GENERIA_BACKFILL_DAYS", "0")
    first = _evaluate(bed.instance, bed.worlds_file)
    assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["neon-harbor"]]
    assert [(r.job_name, r.partition_key) for r in first.run_requests or []] == [
        ("populate_world", "neon-harbor")
    ]
    bed.instance.add_dynamic_partitions("worlds", ["neon-harbor"])
    again = _evaluate(bed.instance, bed.worlds_file)
    assert not again.run_requests and not again.dynamic_partitions_requests
    assert again.skip_reason is not None


def test_sensor_requests_past_days_once_setup_has_materialized(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GENERIA_WORLD_ADDR", raising=False)
    monkeypatch.setenv("GENERIA_BACKFILL_DAYS", "2")
    assert bed.setup("neon-harbor").success
    result = _evaluate(bed.instance, bed.worlds_file)
    requests = result.run_requests or []
    # Both past days of the world in one run.
    assert [r.job_name for r in requests] == ["daily_posts"]
    last_two = post_days.get_partition_keys()[-2:]
    assert covered(requests[0], bed.instance) == [f"{day}|neon-harbor" for day in last_two]
    assert requests[0].tags["generia/world"] == "neon-harbor"


def test_by_default_a_new_world_gets_its_latest_day_once_set_up(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GENERIA_WORLD_ADDR", raising=False)
    monkeypatch.delenv("GENERIA_BACKFILL_DAYS", raising=False)
    assert bed.setup("neon-harbor").success
    requests = _evaluate(bed.instance, bed.worlds_file).run_requests or []
    latest = post_days.get_partition_keys()[-1]
    assert [covered(r, bed.instance) for r in requests] == [[f"{latest}|neon-harbor"]]


def test_sensor_refuses_a_bad_backfill_setting(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENERIA_BACKFILL_DAYS", "lots")
    with pytest.raises(Exception, match="GENERIA_BACKFILL_DAYS='lots'"):
        _evaluate(bed.instance, bed.worlds_file)


def _tick(bed: Bed) -> tuple[list[RunRequest], str | None]:
    instance = bed.instance
    tick = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    context = build_schedule_context(
        instance=instance,
        scheduled_execution_time=tick,
        resources={"catalog": CatalogResource(worlds_file=str(bed.worlds_file))},
    )
    schedule = defs.resolve_schedule_def(daily_posts_schedule.name)
    # The daemon evaluates ticks with the instance as the partition store; so does this test.
    with partition_loading_context(effective_dt=tick, dynamic_partitions_store=instance):
        data = schedule.evaluate_tick(context)
    return list(data.run_requests or []), data.skip_message


def test_schedule_requests_every_worlds_latest_day_in_runs_of_k(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENERIA_PARTITIONS_PER_RUN", "2")
    worlds = ["w-a", "w-b", "w-c", "w-d", "w-e"]
    bed.write_worlds([{"id": w, "prompt": PROMPT} for w in worlds])
    bed.instance.add_dynamic_partitions("worlds", worlds)
    requests, _ = _tick(bed)
    assert [covered(r, bed.instance) for r in requests] == [
        ["2026-11-23|w-a", "2026-11-23|w-b"],
        ["2026-11-23|w-c", "2026-11-23|w-d"],
        ["2026-11-23|w-e"],
    ]
    first = requests[0]
    assert first.job_name in (None, "daily_posts")
    assert first.run_key == "2026-11-23|w-a..w-b"
    assert first.tags == {
        "dagster/asset_partition_range_start": "2026-11-23|w-a",
        "dagster/asset_partition_range_end": "2026-11-23|w-b",
        "generia/worlds": "w-a..w-b",
        "dagster/schedule_name": "daily_posts_schedule",
    }
    # A run of one world-day is tagged as a partition run of the job: the run queue, the
    # job's Partitions tab and re-runs of a partition all find it by these tags.
    last = requests[-1]
    assert last.run_key == "2026-11-23|w-e"
    assert last.tags == {
        "generia/world": "w-e",
        "dagster/partition": "2026-11-23|w-e",
        "dagster/partition/date": "2026-11-23",
        "dagster/partition/world": "w-e",
        "dagster/schedule_name": "daily_posts_schedule",
    }


def test_schedule_skips_worlds_with_unusable_keys_and_empty_instances(bed: Bed) -> None:
    requests, skipped = _tick(bed)
    assert not requests and skipped
    bed.write_worlds([{"id": w, "prompt": PROMPT} for w in ("neon-harbor", "salt-flats")])
    bed.instance.add_dynamic_partitions("worlds", ["neon-harbor", "Bad World", "salt-flats"])
    requests, _ = _tick(bed)
    # The bad key is left out of every range, so it splits the worlds around it.
    assert [covered(r, bed.instance) for r in requests] == [
        ["2026-11-23|neon-harbor"],
        ["2026-11-23|salt-flats"],
    ]


def test_schedule_skips_worlds_gone_from_the_catalog_and_says_so(
    bed: Bed, capsys: pytest.CaptureFixture[str]
) -> None:
    bed.write_worlds([{"id": w, "prompt": PROMPT} for w in ("w-a", "w-c")])
    bed.instance.add_dynamic_partitions("worlds", ["w-a", "w-gone", "w-c"])
    requests, _ = _tick(bed)
    assert [covered(r, bed.instance) for r in requests] == [["2026-11-23|w-a"], ["2026-11-23|w-c"]]
    logged = capsys.readouterr().err  # the tick's log, as the daemon's console shows it
    assert "no posts for 1 worlds not in file" in logged and "w-gone" in logged


def _avatars_materialized(instance: DagsterInstance, *world_ids: str) -> None:
    """A world whose setup is done, as the sensor sees it (without running the setup)."""
    instance.add_dynamic_partitions("worlds", list(world_ids))
    for world_id in world_ids:
        instance.report_runless_asset_event(
            AssetMaterialization("character_avatars", partition=world_id)
        )


def test_sensor_requests_each_worlds_past_days_once(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GENERIA_WORLD_ADDR", raising=False)
    monkeypatch.setenv("GENERIA_BACKFILL_DAYS", "2")
    prompt = "A salt desert of mirages and wind-powered caravans"
    bed.write_worlds(
        [
            {"id": "neon-harbor", "prompt": prompt, "characters": 4},
            {"id": "salt-flats", "prompt": prompt, "characters": 4},
        ]
    )
    _avatars_materialized(bed.instance, "neon-harbor")
    first = _evaluate(bed.instance, bed.worlds_file)
    requested = first.run_requests or []
    assert [r.job_name for r in requested] == ["populate_world", "daily_posts"]
    assert requested[0].partition_key == "salt-flats"
    assert {key.rpartition("|")[2] for key in covered(requested[1], bed.instance)} == {
        "neon-harbor"
    }

    bed.instance.add_dynamic_partitions("worlds", ["salt-flats"])
    again = _evaluate(bed.instance, bed.worlds_file, first.cursor)
    assert not again.run_requests and again.skip_reason is not None

    _avatars_materialized(bed.instance, "salt-flats")
    later = _evaluate(bed.instance, bed.worlds_file, first.cursor)
    keys = [key for r in later.run_requests or [] for key in covered(r, bed.instance)]
    assert len(keys) == 2
    assert {key.rpartition("|")[2] for key in keys} == {"salt-flats"}


def test_sensor_backfill_stops_at_the_first_partition_day(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GENERIA_WORLD_ADDR", raising=False)
    monkeypatch.setenv("GENERIA_BACKFILL_DAYS", "366")
    _avatars_materialized(bed.instance, "neon-harbor")
    result = _evaluate(bed.instance, bed.worlds_file)
    requests = result.run_requests or []
    days = [key.partition("|")[0] for r in requests for key in covered(r, bed.instance)]
    # Every day that is a partition; a day before the first would fail the tick.
    assert days == post_days.get_partition_keys()


def test_definitions_validate_with_dagster_cli(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "RUNWARE_API_KEY": "validate-only"}
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-m",
            "generia_pipelines.definitions",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
