"""Jobs, the daily schedule and the new-worlds sensor."""

import json
import os
from collections.abc import Collection, Mapping, Sequence

from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    DeleteDynamicPartitionsRequest,
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
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from generia_pipelines.assets.batch import partitions_per_run
from generia_pipelines.assets.posts import day_posts, world_days
from generia_pipelines.assets.report import world_report_asset
from generia_pipelines.assets.world import is_world_key, world_setup
from generia_pipelines.executor import generia_executor
from generia_pipelines.partitions import (
    DATE_DIMENSION,
    InvalidWorldKey,
    world_day_key,
    worlds_partitions,
)
from generia_pipelines.resources.catalog import CatalogResource
from generia_pipelines.retirement import plan_retirement, worlds_in_flight

BACKFILL_DAYS_VAR = "GENERIA_BACKFILL_DAYS"
DEFAULT_BACKFILL_DAYS = 1
#: Run tag naming a one-partition run's world, to find a world's runs in the UI.
WORLD_TAG = "generia/world"
#: Run tag of a range run: its first and last world (``first..last``).
WORLDS_TAG = "generia/worlds"
WORLDS = worlds_partitions.name or "worlds"


def world_of_partition(partition_key: str) -> str:
    """The world of a ``worlds`` key (the key itself) or a world × date key (``date|world``)."""
    return partition_key.rpartition("|")[2]


def world_tags(partition_key: str) -> Mapping[str, str]:
    """The ``generia/world`` tag of a partition's run (runs of one world may run at once
    on every launch path; the ledger's claims keep them from doing the same work twice)."""
    return {WORLD_TAG: world_of_partition(partition_key)}


def partition_request(
    job_name: str, partitions_def: PartitionsDefinition, partition_key: str, run_key: str
) -> RunRequest:
    """A run request for a key known to exist, tagged here as Dagster would tag it.

    A request whose tags already name its partition is not resolved again: Dagster would
    look each key up in the instance, one query per world (7-14 s for 1,000 worlds on
    PostgreSQL, measured by bench/scale.py), for keys the caller just read from it or adds
    in the same tick.
    """
    tags = {
        **partitions_def.get_tags_for_partition_key(str(partition_key)),
        **world_tags(str(partition_key)),
    }
    return RunRequest(job_name=job_name, partition_key=partition_key, run_key=run_key, tags=tags)


def range_request(
    job_name: str,
    partitions_def: PartitionsDefinition,
    first: str,
    last: str,
    run_key: str,
    worlds: tuple[str, str],
) -> RunRequest:
    """One run of every partition from ``first`` to ``last`` (a rectangle of worlds × days
    for world × date keys); a range of one partition is an ordinary partition run."""
    if first == last:
        return partition_request(job_name, partitions_def, first, run_key)
    tags = {
        ASSET_PARTITION_RANGE_START_TAG: str(first),
        ASSET_PARTITION_RANGE_END_TAG: str(last),
        **(
            {WORLD_TAG: worlds[0]}
            if worlds[0] == worlds[1]
            else {WORLDS_TAG: f"{worlds[0]}..{worlds[1]}"}
        ),
    }
    return RunRequest(job_name=job_name, run_key=run_key, tags=tags)


def contiguous_chunks(
    ordered: Sequence[str], wanted: Collection[str], size: int
) -> list[list[str]]:
    """``wanted`` keys cut into runs of at most ``size`` that are contiguous in ``ordered``.

    A range run takes every key between its first and its last in the partitions' order
    (the order the worlds were added in), so a key not wanted ends the chunk before it.
    """
    chunks: list[list[str]] = []
    current: list[str] = []
    for key in ordered:
        if key in wanted:
            current.append(key)
            if len(current) == size:
                chunks.append(current)
                current = []
        elif current:
            chunks.append(current)
            current = []
    if current:
        chunks.append(current)
    return chunks


populate_world = define_asset_job(
    "populate_world",
    selection=AssetSelection.assets(world_setup),
    executor_def=generia_executor,
    description="Set worlds up: their brief, characters and avatars (one world, or a range "
    "of them in one run).",
)


daily_posts = define_asset_job(
    "daily_posts",
    selection=AssetSelection.assets(day_posts),
    executor_def=generia_executor,
    description="Worlds' posts of a day: drafts, images, publication (one world-day, or a "
    "range of them in one run).",
)

world_reports = define_asset_job(
    "world_reports",
    selection=AssetSelection.assets(world_report_asset),
    executor_def=generia_executor,
    description="Each world's cost and output per day, from the ledger (a range of worlds "
    "per run).",
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
def daily_posts_schedule(
    context: ScheduleEvaluationContext, catalog: CatalogResource
) -> list[RunRequest] | SkipReason:
    """Every catalog world's last complete day, K worlds per run (GENERIA_PARTITIONS_PER_RUN).

    Each request is a range of worlds in the order they were added, for one day. A world the
    catalog no longer lists, or whose key is unusable (added by hand), is left out, said in
    the tick's log, and ends the range before it. No key is looked up one by one.
    """
    # As Dagster's partitioned schedules: the instance is the store, unless under test.
    store = context.instance if context.instance_ref is not None else None
    with partition_loading_context(context.scheduled_execution_time, store):
        day = post_days.get_last_partition_key()
        worlds = worlds_partitions.get_partition_keys()
    if day is None:
        return SkipReason(f"no complete day since the first partition day ({post_days})")
    listing = catalog.list_outside_run()
    listed = set(listing.ids)
    gone = [world_id for world_id in worlds if world_id not in listed]
    if gone:
        context.log.warning(
            f"no posts for {len(gone)} worlds not in {listing.source} (new_worlds_sensor "
            f"retires their partitions): {', '.join(gone[:20])}"
        )
    usable: set[str] = set()
    for world_id in worlds:
        try:
            world_day_key(world_id, day)
        except InvalidWorldKey as exc:
            context.log.warning(f"no posts for {world_id!r}: {exc}")
            continue
        if world_id in listed:
            usable.add(world_id)
    requests = [
        range_request(
            daily_posts.name,
            world_days,
            world_day_key(chunk[0], day),
            world_day_key(chunk[-1], day),
            f"{day}|{chunk[0]}..{chunk[-1]}" if len(chunk) > 1 else world_day_key(chunk[0], day),
            (chunk[0], chunk[-1]),
        )
        for chunk in contiguous_chunks(worlds, usable, partitions_per_run())
    ]
    for request in requests:
        context.log.info(f"{day}: {request.tags.get(WORLDS_TAG) or request.tags[WORLD_TAG]}")
    if not requests:
        return SkipReason(
            f"no worlds of {listing.source} are partitions yet: the new_worlds_sensor adds them"
        )
    return requests


@schedule(
    job=world_reports,
    cron_schedule="0 9 * * *",
    execution_timezone="UTC",
    name="world_reports_schedule",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every morning after the posts, each world's report of cost and output.",
)
def world_reports_schedule(context: ScheduleEvaluationContext) -> list[RunRequest] | SkipReason:
    """Every world's report, K worlds per run; the date in the run key keeps one a day."""
    store = context.instance if context.instance_ref is not None else None
    with partition_loading_context(context.scheduled_execution_time, store):
        worlds = worlds_partitions.get_partition_keys()
    usable = {world_id for world_id in worlds if is_world_key(world_id)}
    today = context.scheduled_execution_time.date().isoformat()
    requests = [
        range_request(
            world_reports.name,
            worlds_partitions,
            chunk[0],
            chunk[-1],
            f"{today}|{chunk[0]}..{chunk[-1]}",
            (chunk[0], chunk[-1]),
        )
        for chunk in contiguous_chunks(worlds, usable, partitions_per_run())
    ]
    return requests or SkipReason("no worlds yet: the new_worlds_sensor adds them")


def backfill_days() -> int:
    """How many past days of posts a new world gets once set up (GENERIA_BACKFILL_DAYS).

    One by default: a world found by the sensor gets its latest complete day right after its
    setup, instead of waiting for the next morning's schedule.
    """
    raw = os.environ.get(BACKFILL_DAYS_VAR, "").strip() or str(DEFAULT_BACKFILL_DAYS)
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
    materialized, request its posts for the last N days, once. Retire the partitions of
    worlds the catalog no longer lists, once no run works on them (see retirement).

    The cursor lists the worlds whose days were requested: without it every tick would
    request every world's last N days again (7,000 run keys for 1,000 worlds and a week, each
    looked up by the daemon, every minute) and, as the days move on, yesterday's posts of
    every world a second time next to the schedule's run. Run keys still keep each request
    single if the cursor is reset.
    """
    listing = catalog.list_outside_run()
    for skipped in listing.skipped:
        context.log.warning(f"catalog world {skipped.world_id!r} skipped: {skipped.reason}")
    ordered = list(context.instance.get_dynamic_partitions(WORLDS))
    known = set(ordered)
    new = [w.id for w in listing.worlds if w.id not in known]
    listed = set(listing.ids) | {str(s.world_id) for s in listing.skipped}
    retirement = plan_retirement(ordered, listed, worlds_in_flight(context.instance, ordered))
    for line in retirement.messages(listing.source):
        context.log.warning(line)
    per_run = partitions_per_run()
    # Added in this order in this tick, so each chunk is a contiguous range of worlds.
    requests = [
        range_request(
            populate_world.name,
            worlds_partitions,
            chunk[0],
            chunk[-1],
            f"populate_world:{chunk[0]}" + (f"..{chunk[-1]}" if len(chunk) > 1 else ""),
            (chunk[0], chunk[-1]),
        )
        for chunk in contiguous_chunks(new, set(new), per_run)
    ]
    cursor = context.cursor
    days = backfill_days()
    if days:
        done = backfilled_worlds(context.cursor)
        ready = context.instance.get_materialized_partitions(AssetKey("character_avatars"))
        fresh = (ready & {w.id for w in listing.worlds}) - done
        # Only days that are partitions, none before the first day.
        day_keys = post_days.get_partition_keys()[-days:]
        requests.extend(backfill_requests(ordered, fresh, day_keys, per_run))
        if fresh:
            cursor = backfill_cursor(done | fresh)
    changes: list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest] = []
    if new:
        changes.append(worlds_partitions.build_add_request(new))
    if retirement.retire:
        changes.append(worlds_partitions.build_delete_request(retirement.retire))
    if not requests and not changes:
        return SensorResult(skip_reason=SkipReason(f"no new worlds in {listing.source}"))
    return SensorResult(run_requests=requests, dynamic_partitions_requests=changes, cursor=cursor)


def backfill_requests(
    ordered: Sequence[str], fresh: Collection[str], day_keys: Sequence[str], per_run: int
) -> list[RunRequest]:
    """The past days of newly set-up worlds, as rectangles of worlds × days of at most
    ``per_run`` world-days: each run takes all the days of a few worlds, so a world's
    backfill lands in one run."""
    if not day_keys or not fresh:
        return []
    days_per_run = min(len(day_keys), per_run)
    worlds_per_run = max(1, per_run // days_per_run)
    requests = []
    for chunk in contiguous_chunks(ordered, fresh, worlds_per_run):
        for start in range(0, len(day_keys), days_per_run):
            span_days = day_keys[start : start + days_per_run]
            first_day, last_day = span_days[0], span_days[-1]
            span = f"{chunk[0]}..{chunk[-1]}" if len(chunk) > 1 else chunk[0]
            days_span = f"{first_day}..{last_day}" if first_day != last_day else first_day
            requests.append(
                range_request(
                    daily_posts.name,
                    world_days,
                    world_day_key(chunk[0], first_day),
                    world_day_key(chunk[-1], last_day),
                    f"daily_posts:{span}:{days_span}",
                    (chunk[0], chunk[-1]),
                )
            )
    return requests
