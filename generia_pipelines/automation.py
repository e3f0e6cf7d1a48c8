"""Jobs, the daily schedule and the new-worlds sensor."""

import json
import os
from collections.abc import Mapping

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    PartitionedConfig,
    PartitionsDefinition,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    partition_loading_context,
    schedule,
    sensor,
)

from generia_pipelines.assets.posts import day_posts, world_days
from generia_pipelines.assets.world import world_brief, world_characters
from generia_pipelines.executor import generia_executor
from generia_pipelines.partitions import (
    DATE_DIMENSION,
    InvalidWorldKey,
    world_day_key,
    worlds_partitions,
)
from generia_pipelines.resources.catalog import CatalogResource

BACKFILL_DAYS_VAR = "GENERIA_BACKFILL_DAYS"
#: Run tag naming the run's world; deploy/dagster.yaml allows one run per value at a time.
WORLD_TAG = "generia/world"
WORLDS = worlds_partitions.name or "worlds"


def world_of_partition(partition_key: str) -> str:
    """The world of a ``worlds`` key (the key itself) or a world × date key (``date|world``)."""
    return partition_key.rpartition("|")[2]


def world_tags(partition_key: str) -> Mapping[str, str]:
    """The ``generia/world`` tag of a partition's run."""
    return {WORLD_TAG: world_of_partition(partition_key)}


def per_world_config(partitions_def: PartitionsDefinition) -> PartitionedConfig:
    """No run config per partition, only the world tag.

    Dagster tags a run with its partition (``dagster/partition``, and per dimension for world
    × date), but with nothing the two jobs share: with this tag the run queue never runs a
    world's ``populate_world`` and ``daily_posts`` at once, and since it is first in, first
    out, posts queued after a world's setup wait for it. Job backfills, the schedule, the
    sensor and the launchpad all take a job's partition tags from here.
    """
    return PartitionedConfig(
        partitions_def=partitions_def,
        run_config_for_partition_key_fn=lambda _key: {},
        tags_for_partition_key_fn=world_tags,
    )


def partition_request(
    job_name: str, config: PartitionedConfig, partition_key: str, run_key: str
) -> RunRequest:
    """A run request for a key known to exist, tagged here as Dagster would tag it.

    A request whose tags already name its partition is not resolved again: Dagster would
    look each key up in the instance, one query per world (7-14 s for 1,000 worlds on
    PostgreSQL, measured by bench/scale.py), for keys the caller just read from it or adds
    in the same tick.
    """
    tags = config.get_tags_for_partition_key(partition_key, job_name=job_name)
    return RunRequest(job_name=job_name, partition_key=partition_key, run_key=run_key, tags=tags)


populate_world_config = per_world_config(worlds_partitions)

populate_world = define_asset_job(
    "populate_world",
    selection=AssetSelection.assets(world_brief, world_characters),
    config=populate_world_config,
    executor_def=generia_executor,
    description="Set a world up: its brief, its characters and their avatars.",
)

daily_posts_config = per_world_config(world_days)

daily_posts = define_asset_job(
    "daily_posts",
    selection=AssetSelection.assets(day_posts),
    config=daily_posts_config,
    executor_def=generia_executor,
    description="One world's posts of one day: drafts, images, publication.",
)

post_days = world_days.get_partitions_def_for_dimension(DATE_DIMENSION)


@schedule(
    job=daily_posts,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    name="daily_posts_schedule",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every morning, each world's posts for the day that just ended.",
)
def daily_posts_schedule(context: ScheduleEvaluationContext) -> list[RunRequest] | SkipReason:
    """One run per world for the last complete day, as build_schedule_from_partitioned_job
    made them (run key = partition key), but with the worlds read in one query and the keys
    not looked up again one by one (see partition_request)."""
    # As Dagster's partitioned schedules: the instance is the store, unless under test.
    store = context.instance if context.instance_ref is not None else None
    with partition_loading_context(context.scheduled_execution_time, store):
        day = post_days.get_last_partition_key()
        worlds = worlds_partitions.get_partition_keys()
    if day is None:
        return SkipReason(f"no complete day since the first partition day ({post_days})")
    requests: list[RunRequest] = []
    for world_id in worlds:
        try:
            key = world_day_key(world_id, day)
        except InvalidWorldKey as exc:  # added by hand, bypassing the sensor's validation
            context.log.warning(f"no posts for {world_id!r}: {exc}")
            continue
        requests.append(partition_request(daily_posts.name, daily_posts_config, key, key))
    return requests or SkipReason("no worlds yet: the new_worlds_sensor adds them")


def backfill_days() -> int:
    """How many past days of posts a new world gets (GENERIA_BACKFILL_DAYS, default 0)."""
    raw = os.environ.get(BACKFILL_DAYS_VAR, "0").strip() or "0"
    try:
        days = int(raw)
    except ValueError:
        raise ValueError(f"{BACKFILL_DAYS_VAR}={raw!r} is not a whole number of days") from None
    if not 0 <= days <= 366:
        raise ValueError(f"{BACKFILL_DAYS_VAR}={days} must be within 0..366")
    return days


def backfilled_worlds(cursor: str | None) -> set[str]:
    """The worlds whose past days the sensor already requested, from its cursor."""
    if not cursor:
        return set()
    try:
        worlds = json.loads(cursor)["backfilled"]
    except (ValueError, TypeError, KeyError):
        raise ValueError(
            f"new_worlds_sensor cursor {cursor[:80]!r} is not "
            '{"backfilled": [world ids]}; reset it to start over'
        ) from None
    return {str(world_id) for world_id in worlds}


def backfill_cursor(worlds: set[str]) -> str:
    """The sensor's cursor: sorted, so an unchanged set stores an unchanged cursor."""
    return json.dumps({"backfilled": sorted(worlds)}, separators=(",", ":"))


@sensor(
    jobs=[populate_world, daily_posts],
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Finds catalog worlds without a partition, adds them and sets them up.",
)
def new_worlds_sensor(context: SensorEvaluationContext, catalog: CatalogResource) -> SensorResult:
    """Add partitions for new worlds and request their setup; once a world's setup has
    materialized, request its posts for the last N days, once.

    The cursor lists the worlds whose days were requested: without it every tick would
    request every world's last N days again (7,000 run keys for 1,000 worlds and a week, each
    looked up by the daemon, every minute) and, as the days move on, yesterday's posts of
    every world a second time next to the schedule's run. Run keys still keep each request
    single if the cursor is reset.
    """
    listing = catalog.list_outside_run()
    for skipped in listing.skipped:
        context.log.warning(f"catalog world {skipped.world_id!r} skipped: {skipped.reason}")
    known = set(context.instance.get_dynamic_partitions(WORLDS))
    new = [w.id for w in listing.worlds if w.id not in known]
    requests = [
        partition_request(
            populate_world.name, populate_world_config, world_id, f"populate_world:{world_id}"
        )
        for world_id in new
    ]
    cursor = context.cursor
    days = backfill_days()
    if days:
        done = backfilled_worlds(context.cursor)
        ready = context.instance.get_materialized_partitions(AssetKey("character_avatars"))
        fresh = sorted((ready & {w.id for w in listing.worlds}) - done)
        # Only days that are partitions: the latest first, none before the first day.
        day_keys = post_days.get_partition_keys()[-days:][::-1]
        for world_id in fresh:
            requests.extend(
                partition_request(
                    daily_posts.name,
                    daily_posts_config,
                    world_day_key(world_id, day),
                    f"daily_posts:{world_id}:{day}",
                )
                for day in day_keys
            )
        if fresh:
            cursor = backfill_cursor(done | set(fresh))
    if not requests:
        return SensorResult(skip_reason=SkipReason(f"no new worlds in {listing.source}"))
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[worlds_partitions.build_add_request(new)] if new else [],
        cursor=cursor,
    )
