"""Daily post assets (partitioned by world × date): drafts, their images, the posts.

The three assets are made by one step, ``day_posts``, in which each post flows through its
stages on its own: its image is drawn as soon as its draft exists and it is published as
soon as its image is confirmed. Three steps would make every image wait for the day's last
draft and every post for the last image; ``bench/harness.py`` measured that as a third of
a world's wall time. The assets stay separate in the graph and can be materialized alone.
"""

import warnings
from dataclasses import dataclass

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    BetaWarning,
    Failure,
    MaterializeResult,
    MultiToSingleDimensionPartitionMapping,
    multi_asset,
)

from generia_pipelines import checks
from generia_pipelines.catalog import WorldSpec
from generia_pipelines.cost_report import cost_of
from generia_pipelines.ledger import Stage, Unit
from generia_pipelines.partitions import (
    WORLD_DIMENSION,
    InvalidPartitionKey,
    split_world_day_key,
    world_days_partitions_def,
)
from generia_pipelines.resources.catalog import CatalogResource
from generia_pipelines.resources.grpc import MediaResource, PostResource, WorldResource
from generia_pipelines.resources.ledger import LedgerResource
from generia_pipelines.resources.runware import RunwareResource
from generia_pipelines.resources.text import TextGenerationResource
from generia_pipelines.units.causes import MissingPrerequisite
from generia_pipelines.units.day import (
    DAY_STEPS,
    DRAFT_STEP,
    IMAGE_STEP,
    POSTS,
    DayState,
    day_units,
    draft_of,
    make_day,
)
from generia_pipelines.units.session import ClaimSession
from generia_pipelines.units.setup_state import character_profile, posting_characters

from .batch import (
    PartitionOutcome,
    backfill_policy,
    materialized_by_this_run,
    partitions_in_flight,
    run_partition_keys,
    run_partitions,
)
from .common import (
    RETRY,
    RUNWARE_POOL,
    partition_spec,
    unit_work,
    variant_url,
)
from .failures import fail_fast_on_bad_input, steps_failure
from .metadata import contract_md, image_gallery, table_md
from .world import AVATARS_KEY, CHARACTERS_KEY, stored_brief

world_days = world_days_partitions_def()
with warnings.catch_warnings():  # a beta class in Dagster 1.13, used as documented
    warnings.simplefilter("ignore", category=BetaWarning)
    #: Every day of a world maps to that world's setup partition.
    ONE_WORLD = MultiToSingleDimensionPartitionMapping(partition_dimension_name=WORLD_DIMENSION)
DRAFTS_KEY, IMAGES_KEY, POSTS_KEY = (
    AssetKey("post_drafts"),
    AssetKey("post_images"),
    AssetKey("posts"),
)
#: The asset of each stage of :mod:`generia_pipelines.units.day`.
STEP_ASSET_KEYS = {DRAFT_STEP: DRAFTS_KEY, IMAGE_STEP: IMAGES_KEY, POSTS: POSTS_KEY}


@dataclass(frozen=True)
class DayResources:
    """The resources a day of posts uses."""

    world_service: WorldResource
    text: TextGenerationResource
    media: MediaResource
    runware: RunwareResource
    post: PostResource
    ledger: LedgerResource


class DayPosts:
    """A run's world-days of posts: the resources, the run's claims and the selected stages."""

    def __init__(
        self,
        context: AssetExecutionContext,
        worlds: dict[str, WorldSpec | Exception],
        claims: ClaimSession,
        resources: DayResources,
    ) -> None:
        self.worlds, self.claims = worlds, claims
        self.text, self.media, self.runware = resources.text, resources.media, resources.runware
        self.post, self.ledger = resources.post, resources.ledger.ledger
        self.selected = {
            stage for stage, key in STEP_ASSET_KEYS.items() if key in context.selected_asset_keys
        }
        # The text and Runware clients bound their own calls; this many posts in flight
        # keeps both busy and lets uploads and publishing overlap the next images.
        self.width = self.text.max_concurrency + 2 * self.runware.concurrency

    async def world_day(self, key: str) -> PartitionOutcome:
        """Every selected stage of every post of one world-day; the results of the stages
        that finished, and the failure of those that did not."""
        world_id, day = split_world_day_key(key)
        spec = self.worlds[world_id]
        if isinstance(spec, Exception):
            raise spec
        ledger = self.ledger
        brief = stored_brief(ledger, spec.id)
        character_units = {str(u.character_id): u for u in posting_characters(ledger, spec)}
        if not character_units:
            raise MissingPrerequisite(
                f"world {spec.id!r} has no characters yet: run populate_world first"
            )
        if DRAFT_STEP not in self.selected and not any(
            u.reached(Stage.TEXT_DONE) for u in day_units(ledger, spec.id, day)
        ):
            raise MissingPrerequisite(
                f"no drafts for {spec.id} on {day}: materialize post_drafts first"
            )
        period_work = unit_work(
            spec.id,
            day.isoformat(),
            spec.daily_budget(),
            ledger,
            self.claims,
            text=self.text,
            runware=self.runware,
            media=self.media,
        )
        state = DayState(
            spec,
            day,
            period_work,
            self.post.client,
            honours_idempotency=self.post.honours_idempotency,
        )
        await make_day(state, character_units, brief, self.selected, self.width)
        outcome = PartitionOutcome(key)
        for stage in DAY_STEPS:
            if stage not in self.selected or state.steps.tallies[stage].failed:
                break
            if stage == DRAFT_STEP:
                outcome.results.append(drafts_result(state, character_units))
            elif stage == IMAGE_STEP:
                outcome.results.append(images_result(state))
            else:
                ready = [u for u in day_units(ledger, spec.id, day) if u.reached(Stage.CONFIRMED)]
                waiting = spec.posts_per_day - len(ready)
                if waiting > 0:
                    outcome.failure = Failure(
                        f"{waiting} of {spec.posts_per_day} posts of {spec.id} on {day} have no "
                        "confirmed image yet; they are published once post_images has made them"
                    )
                    return outcome
                outcome.results.append(await posts_result(state, self.post, self.media))
        outcome.failure = steps_failure(state.steps)
        return outcome


def world_of(key: str) -> str:
    """The world of a world × date key; "" for a key that is not one (its own partition
    then fails, naming the problem, and the others go on)."""
    try:
        return split_world_day_key(key).world_id
    except InvalidPartitionKey:
        return ""


async def make_posts(
    context: AssetExecutionContext, catalog: CatalogResource, resources: DayResources
) -> BaseException | None:
    """Every world-day of the run, each reported as it finishes; the run's failure, if any."""
    keys = run_partition_keys(context)
    worlds_catalog = catalog.open(resources.world_service)
    worlds = await worlds_catalog.get_worlds(sorted({world_of(key) for key in keys}))
    selected = [asset for asset in STEP_ASSET_KEYS.values() if asset in context.selected_asset_keys]
    skip = materialized_by_this_run(context, keys, selected)
    posts_each = max(
        (s.posts_per_day for s in worlds.values() if isinstance(s, WorldSpec)), default=1
    )
    async with resources.ledger.claims(context.run.run_id, context.log) as claims:
        days = DayPosts(context, worlds, claims, resources)
        report = await run_partitions(
            context,
            keys,
            days.world_day,
            in_flight=partitions_in_flight(len(keys), posts_each, days.width),
            skip=skip,
        )
    return report.failure("world-days")


def drafts_result(state: DayState, character_units: dict[str, Unit]) -> MaterializeResult:
    drafted = day_units(state.ledger, state.spec.id, state.day)
    names = {cid: character_profile(u).display_name for cid, u in character_units.items()}
    return MaterializeResult(
        asset_key=DRAFTS_KEY,
        check_results=[checks.caption_rules([draft_of(u) for u in drafted], asset=DRAFTS_KEY)],
        metadata={
            **state.steps.tallies[DRAFT_STEP].metadata(),
            "posts_planned": len(drafted),
            "authors": len({u.character_id for u in drafted}),
            "cost_usd": cost_of(
                state.ledger.paid_calls(state.spec.id),
                {POSTS},
                call_kind="text",
                partition=state.day.isoformat(),
            ),
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
    ledger, spec, day = state.ledger, state.spec, state.day
    confirmed = [u for u in day_units(ledger, spec.id, day) if u.reached(Stage.CONFIRMED)]
    return MaterializeResult(
        asset_key=IMAGES_KEY,
        metadata={
            **state.steps.tallies[IMAGE_STEP].metadata(),
            "images_confirmed": len(confirmed),
            "cost_usd": cost_of(
                ledger.paid_calls(spec.id), {POSTS}, call_kind="image", partition=day.isoformat()
            ),
            "previews": image_gallery(
                (f"slot {u.slot}", variant_url(u, "thumbnail")) for u in confirmed
            ),
        },
    )


async def posts_result(
    state: DayState, post: PostResource, media: MediaResource
) -> MaterializeResult:
    ledger, spec, day = state.ledger, state.spec, state.day
    published = [u for u in day_units(ledger, spec.id, day) if u.done]
    return MaterializeResult(
        asset_key=POSTS_KEY,
        check_results=[
            await checks.post_images_owned(
                published, post.client, media.client, spec.id, asset=POSTS_KEY
            ),
            checks.no_duplicates(ledger, spec.id, asset=POSTS_KEY),
        ],
        metadata={
            **state.steps.tallies[POSTS].metadata(),
            "posts_published": len(published),
            "platform_contract": contract_md(post.client, media.client),
            # Publishing calls no paid provider: the day's texts and images show on
            # post_drafts and post_images, and on world_report.
            "cost_usd": 0.0,
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
        partition_spec(
            DRAFTS_KEY,
            # A world's days need its characters and their avatars: the graph shows it, and
            # backfills from the asset graph set a world up before its days.
            deps=[
                AssetDep(asset, partition_mapping=ONE_WORLD)
                for asset in (CHARACTERS_KEY, AVATARS_KEY)
            ],
            description="The day's posts: fair choice of authors, caption, tags, image prompt.",
            kinds={"python"},
            partitions_def=world_days,
        ),
        partition_spec(
            IMAGES_KEY,
            deps=[DRAFTS_KEY],
            description="Per draft: Runware image → presign with the author's id → PUT → "
            "ConfirmUpload.",
            kinds={"python", "grpc"},
            partitions_def=world_days,
        ),
        partition_spec(
            POSTS_KEY,
            deps=[IMAGES_KEY],
            description="Per draft whose image is confirmed: CreateAIPost for its author.",
            kinds={"python", "grpc"},
            partitions_def=world_days,
        ),
    ],
    check_specs=[
        *checks.specs("post_drafts", checks.CAPTION_RULES, partitions_def=world_days),
        *checks.specs(
            "posts", checks.POST_IMAGES_OWNED, checks.NO_DUPLICATES, partitions_def=world_days
        ),
    ],
    partitions_def=world_days,
    backfill_policy=backfill_policy(),
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
    """The day's drafts, images and posts, each post moving on as soon as its stage is done;
    in a range run, every world-day of the range, each reported as soon as it is done."""
    resources = DayResources(world, text, media, runware, post, ledger)
    failure = await fail_fast_on_bad_input(make_posts)(context, catalog, resources)
    if failure is not None:
        raise failure
    for _ in ():  # nothing to yield: each world-day was reported by log_event as it finished
        yield
