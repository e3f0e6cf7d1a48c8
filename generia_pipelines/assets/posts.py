"""Daily post assets (partitioned by world × date): drafts, their images, the posts."""

from collections import Counter
from datetime import date, timedelta

from dagster import AssetExecutionContext, Failure, MaterializeResult, asset

from generia_pipelines import checks
from generia_pipelines.catalog import WorldSpec
from generia_pipelines.clients.records import MediaType
from generia_pipelines.clients.text.base import stable_seed
from generia_pipelines.generation.planning import POSTS, assign_post_authors, post_key
from generia_pipelines.generation.prompts import render_post_draft
from generia_pipelines.generation.schemas import PostDraft
from generia_pipelines.ledger import Ledger, Stage, Unit
from generia_pipelines.partitions import split_world_day_key, world_days_partitions_def
from generia_pipelines.resources.catalog import CatalogResource
from generia_pipelines.resources.grpc import MediaResource, PostResource, WorldResource
from generia_pipelines.resources.ledger import LedgerResource
from generia_pipelines.resources.runware import RunwareResource
from generia_pipelines.resources.text import TextGenerationResource

from .common import (
    GROUP,
    RETRY,
    RUNWARE_POOL,
    TEXT_POOL,
    Outcome,
    WorldWork,
    create_remote,
    fail_fast_on_bad_input,
    fail_if_any,
    fan_out,
    image_gallery,
    run_partition_key,
    table_md,
    variant_url,
)
from .world import character_profile, created_characters, stored_brief

world_days = world_days_partitions_def()
#: Days of history a character's next post sees, and fairness looks back over.
RECENT_DAYS = 7


def draft_of(unit: Unit) -> PostDraft:
    assert unit.payload is not None
    return PostDraft.model_validate(unit.payload["value"])


async def _world_day(
    context: AssetExecutionContext, catalog: CatalogResource, world: WorldResource
) -> tuple[WorldSpec, date]:
    world_id, day = split_world_day_key(run_partition_key(context))
    return await catalog.open(world).get_world(world_id), day


def _day_units(book: Ledger, world_id: str, day: date) -> list[Unit]:
    return book.units(world_id, POSTS, day.isoformat())


def _recent(book: Ledger, world_id: str, day: date) -> list[Unit]:
    """Drafted posts of the days before ``day`` in the recent window, newest first."""
    earliest = (day - timedelta(days=RECENT_DAYS)).isoformat()
    units = [
        u
        for u in book.units(world_id, POSTS)
        if earliest <= u.partition < day.isoformat() and u.reached(Stage.TEXT_DONE)
    ]
    return sorted(units, key=lambda u: (u.partition, u.slot_number or 0), reverse=True)


@asset(
    partitions_def=world_days,
    check_specs=checks.specs("post_drafts", checks.CAPTION_RULES),
    group_name=GROUP,
    kinds={"python"},
    pool=TEXT_POOL,
    retry_policy=RETRY,
)
@fail_fast_on_bad_input
async def post_drafts(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    world: WorldResource,
    text: TextGenerationResource,
    ledger: LedgerResource,
) -> MaterializeResult:
    """The day's posts: fair choice of authors, caption, tags and image prompt for each."""
    spec, day = await _world_day(context, catalog, world)
    book = ledger.ledger
    brief = stored_brief(book, spec.id)
    people = {str(u.character_id): u for u in created_characters(book, spec.id)}
    if not people:
        raise Failure(f"world {spec.id!r} has no characters yet: run populate_world first")
    period = day.isoformat()
    work = WorldWork(spec.id, period, spec.daily_budget(), book, text=text)
    keys = [post_key(spec.id, day, slot) for slot in range(spec.posts_per_day)]
    book.plan(keys)
    today = {u.key: u for u in _day_units(book, spec.id, day)}
    assigned = {
        slot: str(today[key].character_id)
        for slot, key in enumerate(keys)
        if today[key].reached(Stage.TEXT_DONE) and today[key].character_id in people
    }
    history = _recent(book, spec.id, day)
    counts = Counter(str(u.character_id) for u in history)
    last = {}
    for unit in reversed(history):  # oldest first, so the newest date wins
        last[str(unit.character_id)] = unit.partition
    authors = assign_post_authors(
        list(people), spec.posts_per_day, day, counts, last_posted=last, assigned=assigned
    )

    async def draft(slot: int) -> Outcome:
        key = keys[slot]
        if today[key].reached(Stage.TEXT_DONE):
            return Outcome.REUSED
        author = authors[slot]
        recent = [draft_of(u).caption for u in history if u.character_id == author]
        value = await work.generate_text(
            key,
            PostDraft,
            render_post_draft(spec, brief, character_profile(people[author]), recent, day),
        )
        book.record_text(key, {"value": value.model_dump(mode="json")}, character_id=author)
        return Outcome.CREATED

    tally = await fan_out(
        list(range(spec.posts_per_day)),
        lambda slot: keys[slot],
        draft,
        limit=text.max_concurrency,
        log=context.log,
        what="post drafts",
    )
    fail_if_any(tally, "post drafts")
    drafted = _day_units(book, spec.id, day)
    names = {cid: character_profile(u).display_name for cid, u in people.items()}
    return MaterializeResult(
        check_results=[checks.caption_rules([draft_of(u) for u in drafted])],
        metadata={
            **tally.metadata(),
            "posts_planned": len(drafted),
            "authors": len({u.character_id for u in drafted}),
            "preview": table_md(
                ["slot", "author", "caption", "tags"],
                (
                    (
                        u.slot,
                        names.get(str(u.character_id), "?"),
                        draft_of(u).caption,
                        " ".join(f"#{t}" for t in draft_of(u).tags),
                    )
                    for u in drafted
                ),
            ),
        },
    )


@asset(
    partitions_def=world_days,
    deps=[post_drafts],
    group_name=GROUP,
    kinds={"python", "grpc"},
    pool=RUNWARE_POOL,
    retry_policy=RETRY,
)
@fail_fast_on_bad_input
async def post_images(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    world: WorldResource,
    media: MediaResource,
    runware: RunwareResource,
    ledger: LedgerResource,
) -> MaterializeResult:
    """Per draft: Runware image → presign with the author's id → PUT → ConfirmUpload."""
    spec, day = await _world_day(context, catalog, world)
    book = ledger.ledger
    work = WorldWork(
        spec.id, day.isoformat(), spec.daily_budget(), book, runware=runware, media=media
    )
    drafted = [u for u in _day_units(book, spec.id, day) if u.reached(Stage.TEXT_DONE)]
    if not drafted:
        raise Failure(f"no drafts for {spec.id} on {day}: materialize post_drafts first")

    async def picture(unit: Unit) -> Outcome:
        if unit.reached(Stage.CONFIRMED):
            return Outcome.REUSED
        image, _ = await work.image_for(
            unit.key, draft_of(unit).image_prompt, stable_seed(unit.key)
        )
        current = book.get(unit.key)
        assert current is not None
        await work.upload_and_confirm(current, image, str(unit.character_id), MediaType.POST_IMAGE)
        return Outcome.CREATED

    tally = await fan_out(
        drafted,
        lambda u: u.key,
        picture,
        # Runware's client bounds the image calls; twice as many units let each upload
        # overlap the next image instead of holding an image slot.
        limit=2 * runware.concurrency,
        log=context.log,
        what="post images",
    )
    fail_if_any(tally, "post images")
    confirmed = [u for u in _day_units(book, spec.id, day) if u.reached(Stage.CONFIRMED)]
    return MaterializeResult(
        metadata={
            **tally.metadata(),
            "images_confirmed": len(confirmed),
            "cost_usd": round(book.cost(spec.id, kind=POSTS, partition=day.isoformat()), 6),
            "previews": image_gallery(
                (f"slot {u.slot}", variant_url(u, "thumbnail")) for u in confirmed
            ),
        }
    )


@asset(
    partitions_def=world_days,
    deps=[post_images],
    check_specs=checks.specs("posts", checks.POST_IMAGES_OWNED, checks.NO_DUPLICATES),
    group_name=GROUP,
    kinds={"python", "grpc"},
    retry_policy=RETRY,
)
@fail_fast_on_bad_input
async def posts(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    world: WorldResource,
    post: PostResource,
    media: MediaResource,
    ledger: LedgerResource,
) -> MaterializeResult:
    """Per draft whose image is confirmed: CreateAIPost on behalf of its author."""
    spec, day = await _world_day(context, catalog, world)
    book = ledger.ledger
    ready = [u for u in _day_units(book, spec.id, day) if u.reached(Stage.CONFIRMED)]
    waiting = spec.posts_per_day - len(ready)

    async def publish(unit: Unit) -> Outcome:
        if unit.done:
            return Outcome.REUSED
        value = draft_of(unit)

        async def call() -> str:
            created = await post.client.create_ai_post(
                world_id=spec.id,
                character_id=str(unit.character_id),
                caption=value.caption,
                media_id=str(unit.media_id),
                tags=value.tags,
                idempotency_key=unit.key,
            )
            return created.post_id

        await create_remote(
            unit,
            "post",
            call,
            book=book,
            client=post.client,
            honoured=post.honours_idempotency,
            log=context.log,
        )
        return Outcome.CREATED

    tally = await fan_out(ready, lambda u: u.key, publish, limit=32, log=context.log, what="posts")
    fail_if_any(tally, "posts")
    if waiting > 0:
        raise Failure(
            f"{waiting} of {spec.posts_per_day} posts of {spec.id} on {day} have no confirmed "
            "image yet; they are published once post_images has made them"
        )
    published = [u for u in _day_units(book, spec.id, day) if u.done]
    return MaterializeResult(
        check_results=[
            await checks.post_images_owned(published, post.client, media.client, spec.id),
            checks.no_duplicates(book, spec.id),
        ],
        metadata={
            **tally.metadata(),
            "posts_published": len(published),
            "preview": table_md(
                ["slot", "post", "caption", "image"],
                (
                    (u.slot, u.post_id, draft_of(u).caption, variant_url(u, "original"))
                    for u in published
                ),
            ),
            "previews": image_gallery(
                (draft_of(u).caption[:40], variant_url(u, "thumbnail")) for u in published
            ),
        },
    )
