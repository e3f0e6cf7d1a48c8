"""Daily post assets (partitioned by world × date): drafts, their images, the posts.

The three assets are made by one step, ``day_posts``, in which each post flows through its
stages on its own: its image is drawn as soon as its draft exists and it is published as
soon as its image is confirmed. Three steps would make every image wait for the day's last
draft and every post for the last image; ``bench/harness.py`` measured that as a third of
a world's wall time. The assets stay separate in the graph and can be materialized alone.
"""

from collections import Counter
from datetime import date, timedelta
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    multi_asset,
)

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
    Outcome,
    Stages,
    WorldWork,
    create_remote,
    fail_fast_on_bad_input,
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


DRAFTS, IMAGES, POSTS_ASSET = AssetKey("post_drafts"), AssetKey("post_images"), AssetKey("posts")
STAGES = (DRAFTS, IMAGES, POSTS_ASSET)
STAGE_NAMES = {DRAFTS: "post drafts", IMAGES: "post images", POSTS_ASSET: "posts"}


class DayState:
    """One world-day's inputs and per-stage tallies, shared by the per-post coroutines."""

    def __init__(self, spec: WorldSpec, day: date, book: Ledger, work: WorldWork) -> None:
        self.spec, self.day, self.book, self.work = spec, day, book, work
        self.keys = [post_key(spec.id, day, slot) for slot in range(spec.posts_per_day)]
        self.stages = Stages(STAGE_NAMES)


def plan_authors(state: DayState, people: dict[str, Unit]) -> tuple[list[str], list[Unit]]:
    """The day's units planned, and a fair author for each slot (kept if already drafted)."""
    book, spec, day = state.book, state.spec, state.day
    book.plan(state.keys)
    today = {u.key: u for u in _day_units(book, spec.id, day)}
    assigned = {
        slot: str(today[key].character_id)
        for slot, key in enumerate(state.keys)
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
    return authors, history


async def write_draft(
    state: DayState, unit: Unit, author: Unit, history: list[Unit], brief: Any
) -> Outcome:
    """The post's caption, tags and image prompt, with its author's recent posts as context."""
    if unit.reached(Stage.TEXT_DONE):
        return Outcome.REUSED
    author_id = str(author.character_id)
    recent = [draft_of(u).caption for u in history if u.character_id == author_id]
    value = await state.work.generate_text(
        unit.key,
        PostDraft,
        render_post_draft(state.spec, brief, character_profile(author), recent, state.day),
    )
    state.book.record_text(
        unit.key, {"value": value.model_dump(mode="json")}, character_id=author_id
    )
    return Outcome.CREATED


async def draw_image(state: DayState, unit: Unit) -> Outcome:
    """Runware image → presign with the author's id → PUT → ConfirmUpload."""
    if unit.reached(Stage.CONFIRMED):
        return Outcome.REUSED
    image, _ = await state.work.image_for(
        unit.key, draft_of(unit).image_prompt, stable_seed(unit.key)
    )
    current = state.book.get(unit.key)
    if current is None:  # pragma: no cover - image_for just wrote it
        raise RuntimeError(f"{unit.key} vanished from the ledger")
    await state.work.upload_and_confirm(
        current, image, str(unit.character_id), MediaType.POST_IMAGE
    )
    return Outcome.CREATED


async def publish(state: DayState, unit: Unit, post: PostResource, log: Any) -> Outcome:
    """CreateAIPost on behalf of the post's author, once."""
    if unit.done:
        return Outcome.REUSED
    value = draft_of(unit)

    async def call() -> str:
        created = await post.client.create_ai_post(
            world_id=state.spec.id,
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
        book=state.book,
        client=post.client,
        honoured=post.honours_idempotency,
        log=log,
        claims=state.work.claims,
    )
    return Outcome.CREATED


async def make_day(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    world: WorldResource,
    text: TextGenerationResource,
    media: MediaResource,
    runware: RunwareResource,
    post: PostResource,
    ledger: LedgerResource,
) -> tuple[list[MaterializeResult], Failure | None]:
    """Every selected stage of every post of the day; the results of the stages that
    finished, and the failure of those that did not."""
    selected = set(context.selected_asset_keys)
    spec, day = await _world_day(context, catalog, world)
    book = ledger.ledger
    brief = stored_brief(book, spec.id)
    people = {str(u.character_id): u for u in created_characters(book, spec.id)}
    if not people:
        raise Failure(f"world {spec.id!r} has no characters yet: run populate_world first")
    async with ledger.claims(context.run.run_id, context.log) as claims:
        work = WorldWork(
            spec.id,
            day.isoformat(),
            spec.daily_budget(),
            book,
            claims,
            text=text,
            runware=runware,
            media=media,
        )
        state = DayState(spec, day, book, work)
        return await _make_day(context, state, selected, people, brief, text, runware, post, media)


async def _make_day(
    context: AssetExecutionContext,
    state: DayState,
    selected: set[AssetKey],
    people: dict[str, Unit],
    brief: Any,
    text: TextGenerationResource,
    runware: RunwareResource,
    post: PostResource,
    media: MediaResource,
) -> tuple[list[MaterializeResult], Failure | None]:
    """``make_day`` under the step's claim session."""
    spec, day, book = state.spec, state.day, state.book
    authors, history = plan_authors(state, people)
    if DRAFTS not in selected and not any(
        u.reached(Stage.TEXT_DONE) for u in _day_units(book, spec.id, day)
    ):
        raise Failure(f"no drafts for {spec.id} on {day}: materialize post_drafts first")

    def finished(key: str) -> bool:
        unit = book.get(key)
        return unit is not None and unit.done

    async def one(slot: int) -> Outcome:
        key = state.keys[slot]
        if not await state.work.claims.acquire(key, finished=lambda: finished(key)):
            return Outcome.REUSED  # another run published it while we waited
        unit = book.get(key)
        if unit is None:  # pragma: no cover - planned above
            raise RuntimeError(f"{key} is not in the ledger")
        if DRAFTS in selected:
            await state.stages.run(
                DRAFTS, key, write_draft(state, unit, people[authors[slot]], history, brief)
            )
            unit = book.get(key) or unit
        if not unit.reached(Stage.TEXT_DONE):
            return Outcome.REUSED  # not drafted and drafts not asked for: nothing to do
        if IMAGES in selected:
            await state.stages.run(IMAGES, key, draw_image(state, unit))
            unit = book.get(key) or unit
        if POSTS_ASSET in selected and unit.reached(Stage.CONFIRMED):
            await state.stages.run(POSTS_ASSET, key, publish(state, unit, post, context.log))
        return Outcome.CREATED

    await fan_out(
        list(range(spec.posts_per_day)),
        lambda slot: state.keys[slot],
        one,
        # The text and Runware clients bound their own calls; this many posts in flight
        # keeps both busy and lets uploads and publishing overlap the next images.
        limit=text.max_concurrency + 2 * runware.concurrency,
        log=context.log,
        what="posts of the day",
    )
    results = []
    for stage in STAGES:
        if stage not in selected or state.stages.tallies[stage].failed:
            break
        if stage == DRAFTS:
            results.append(drafts_result(state, people))
        elif stage == IMAGES:
            results.append(images_result(state))
        else:
            ready = [u for u in _day_units(book, spec.id, day) if u.reached(Stage.CONFIRMED)]
            waiting = spec.posts_per_day - len(ready)
            if waiting > 0:
                return results, Failure(
                    f"{waiting} of {spec.posts_per_day} posts of {spec.id} on {day} have no "
                    "confirmed image yet; they are published once post_images has made them"
                )
            results.append(await posts_result(state, post, media))
    return results, state.stages.failure()


def drafts_result(state: DayState, people: dict[str, Unit]) -> MaterializeResult:
    drafted = _day_units(state.book, state.spec.id, state.day)
    names = {cid: character_profile(u).display_name for cid, u in people.items()}
    return MaterializeResult(
        asset_key=DRAFTS,
        check_results=[checks.caption_rules([draft_of(u) for u in drafted], asset=DRAFTS)],
        metadata={
            **state.stages.tallies[DRAFTS].metadata(),
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


def images_result(state: DayState) -> MaterializeResult:
    book, spec, day = state.book, state.spec, state.day
    confirmed = [u for u in _day_units(book, spec.id, day) if u.reached(Stage.CONFIRMED)]
    return MaterializeResult(
        asset_key=IMAGES,
        metadata={
            **state.stages.tallies[IMAGES].metadata(),
            "images_confirmed": len(confirmed),
            "cost_usd": round(book.cost(spec.id, kind=POSTS, partition=day.isoformat()), 6),
            "previews": image_gallery(
                (f"slot {u.slot}", variant_url(u, "thumbnail")) for u in confirmed
            ),
        },
    )


async def posts_result(
    state: DayState, post: PostResource, media: MediaResource
) -> MaterializeResult:
    book, spec, day = state.book, state.spec, state.day
    published = [u for u in _day_units(book, spec.id, day) if u.done]
    return MaterializeResult(
        asset_key=POSTS_ASSET,
        check_results=[
            await checks.post_images_owned(
                published, post.client, media.client, spec.id, asset=POSTS_ASSET
            ),
            checks.no_duplicates(book, spec.id, asset=POSTS_ASSET),
        ],
        metadata={
            **state.stages.tallies[POSTS_ASSET].metadata(),
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


@multi_asset(
    specs=[
        AssetSpec(
            DRAFTS,
            description="The day's posts: fair choice of authors, caption, tags, image prompt.",
            group_name=GROUP,
            kinds={"python"},
            partitions_def=world_days,
        ),
        AssetSpec(
            IMAGES,
            deps=[DRAFTS],
            description="Per draft: Runware image → presign with the author's id → PUT → "
            "ConfirmUpload.",
            group_name=GROUP,
            kinds={"python", "grpc"},
            partitions_def=world_days,
        ),
        AssetSpec(
            POSTS_ASSET,
            deps=[IMAGES],
            description="Per draft whose image is confirmed: CreateAIPost for its author.",
            group_name=GROUP,
            kinds={"python", "grpc"},
            partitions_def=world_days,
        ),
    ],
    check_specs=[
        *checks.specs("post_drafts", checks.CAPTION_RULES),
        *checks.specs("posts", checks.POST_IMAGES_OWNED, checks.NO_DUPLICATES),
    ],
    partitions_def=world_days,
    can_subset=True,
    pool=RUNWARE_POOL,
    retry_policy=RETRY,
)
async def day_posts(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    world: WorldResource,
    text: TextGenerationResource,
    media: MediaResource,
    runware: RunwareResource,
    post: PostResource,
    ledger: LedgerResource,
):  # no return annotation: Dagster reads one as the outputs' types
    """The day's drafts, images and posts, each post moving on as soon as its stage is done."""
    results, failure = await fail_fast_on_bad_input(make_day)(
        context, catalog, world, text, media, runware, post, ledger
    )
    for result in results:
        yield result
    if failure is not None:
        raise failure
