"""Jobs, the daily schedule and the new-worlds sensor."""

import os
from collections.abc import Mapping
from datetime import date, timedelta

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    PartitionedConfig,
    PartitionsDefinition,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    build_schedule_from_partitioned_job,
    define_asset_job,
    sensor,
)

from generia_pipelines.assets.posts import post_drafts, post_images, posts, world_days
from generia_pipelines.assets.world import character_avatars, characters, world_brief
from generia_pipelines.executor import generia_executor
from generia_pipelines.partitions import world_day_key, worlds_partitions
from generia_pipelines.resources.catalog import CatalogResource

BACKFILL_DAYS_VAR = "GENERIA_BACKFILL_DAYS"
#: Run tag naming the run's world; deploy/dagster.yaml allows one run per value at a time.
WORLD_TAG = "generia/world"


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


populate_world = define_asset_job(
    "populate_world",
    selection=AssetSelection.assets(world_brief, characters, character_avatars),
    config=per_world_config(worlds_partitions),
    executor_def=generia_executor,
    description="Set a world up: its brief, its characters and their avatars.",
)

daily_posts = define_asset_job(
    "daily_posts",
    selection=AssetSelection.assets(post_drafts, post_images, posts),
    config=per_world_config(world_days),
    executor_def=generia_executor,
    description="One world's posts of one day: drafts, images, publication.",
)

daily_posts_schedule = build_schedule_from_partitioned_job(
    daily_posts,
    hour_of_day=6,
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every morning, each world's posts for the day that just ended.",
)


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


@sensor(
    jobs=[populate_world, daily_posts],
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Finds catalog worlds without a partition, adds them and sets them up.",
)
def new_worlds_sensor(context: SensorEvaluationContext, catalog: CatalogResource) -> SensorResult:
    """Add partitions for new worlds and request their setup; once a world's setup has
    materialized, request its posts for the last N days (run keys keep each request single)."""
    listing = catalog.list_outside_run()
    for skipped in listing.skipped:
        context.log.warning(f"catalog world {skipped.world_id!r} skipped: {skipped.reason}")
    known = set(context.instance.get_dynamic_partitions(worlds_partitions.name or "worlds"))
    new = [w.id for w in listing.worlds if w.id not in known]
    requests = [
        RunRequest(
            job_name=populate_world.name,
            partition_key=world_id,
            run_key=f"populate_world:{world_id}",
        )
        for world_id in new
    ]
    days = backfill_days()
    if days:
        ready = context.instance.get_materialized_partitions(AssetKey("character_avatars"))
        today = date.today()
        for world_id in sorted(ready & {w.id for w in listing.worlds}):
            for back in range(1, days + 1):
                day = today - timedelta(days=back)
                requests.append(
                    RunRequest(
                        job_name=daily_posts.name,
                        partition_key=world_day_key(world_id, day),
                        run_key=f"daily_posts:{world_id}:{day.isoformat()}",
                    )
                )
    if not new and not requests:
        return SensorResult(skip_reason=SkipReason(f"no new worlds in {listing.source}"))
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[worlds_partitions.build_add_request(new)] if new else [],
    )
