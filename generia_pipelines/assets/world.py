"""World setup assets (partitioned by world): the brief, the characters, their avatars."""

import asyncio
import json
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from generia_pipelines import checks
from generia_pipelines.catalog import WorldSpec
from generia_pipelines.clients.records import MediaType
from generia_pipelines.clients.text.base import stable_seed
from generia_pipelines.generation.planning import (
    CHARACTERS,
    avatar_key,
    brief_key,
    character_key,
    plan_character_batches,
)
from generia_pipelines.generation.prompts import (
    render_avatar_prompt,
    render_character_batch,
    render_character_detail,
    render_world_brief,
)
from generia_pipelines.generation.schemas import (
    AvatarPrompt,
    CharacterBatchPlan,
    CharacterConcept,
    CharacterProfile,
    WorldBrief,
)
from generia_pipelines.ledger import Ledger, Stage, Unit
from generia_pipelines.partitions import validate_world_key, worlds_partitions
from generia_pipelines.resources.catalog import CatalogResource
from generia_pipelines.resources.grpc import CharacterResource, MediaResource, WorldResource
from generia_pipelines.resources.ledger import LedgerResource
from generia_pipelines.resources.runware import RunwareResource
from generia_pipelines.resources.text import TextGenerationResource

from .common import (
    GROUP,
    RETRY,
    RUNWARE_POOL,
    TEXT_POOL,
    Outcome,
    Stages,
    Tally,
    WorldWork,
    create_remote,
    fail_fast_on_bad_input,
    fan_out,
    image_gallery,
    run_partition_key,
    table_md,
    variant_url,
)

#: Planning rounds per materialization: a model that plans fewer characters than asked gets
#: asked again for the rest, a bounded number of times.
PLAN_ROUNDS = 3


async def world_spec(
    context: AssetExecutionContext, catalog: CatalogResource, world: WorldResource
) -> WorldSpec:
    """The partition's world from the catalog; a bad key or a missing world fails clearly."""
    return await catalog.open(world).get_world(validate_world_key(run_partition_key(context)))


def stored_brief(ledger: Ledger, world_id: str) -> WorldBrief:
    unit = ledger.get(brief_key(world_id))
    if unit is None or not unit.reached(Stage.TEXT_DONE) or not unit.payload:
        raise Failure(f"world {world_id!r} has no brief yet: materialize world_brief first")
    return WorldBrief.model_validate(unit.payload["value"])


def _unit_done(book: Ledger, key: str) -> bool:
    unit = book.get(key)
    return unit is not None and unit.done


def _params(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def character_profile(unit: Unit) -> CharacterProfile:
    assert unit.payload is not None
    return CharacterProfile.model_validate(unit.payload["profile"])


def created_characters(ledger: Ledger, world_id: str) -> list[Unit]:
    """The world's characters that exist on the platform, in slot order."""
    return [u for u in ledger.units(world_id, CHARACTERS) if u.done and u.character_id]


@asset(
    partitions_def=worlds_partitions,
    group_name=GROUP,
    kinds={"python", "grpc"},
    pool=TEXT_POOL,
    retry_policy=RETRY,
)
@fail_fast_on_bad_input
async def world_brief(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    world: WorldResource,
    text: TextGenerationResource,
    ledger: LedgerResource,
) -> MaterializeResult:
    """The world's structured description (setting, tone, visual style) everything draws on."""
    spec = await world_spec(context, catalog, world)
    book = ledger.ledger
    key = brief_key(spec.id)
    pushed = False
    async with ledger.claims(context.run.run_id, context.log) as claims:
        work = WorldWork(spec.id, "", spec.setup_budget(), book, claims, text=text)
        if await claims.acquire(key, finished=lambda: _unit_done(book, key)):
            brief, outcome = await work.text_for(key, WorldBrief, render_world_brief(spec))
            unit = book.get(key)
            if world.configured and unit is not None and not unit.done:
                # Merge into the world's params: other keys belong to the platform.
                claims.ensure(key)
                current = await world.client.get_world(spec.id)
                params = _params(current.params)
                params["brief"] = brief.model_dump(mode="json")
                await world.client.update_world_params(
                    spec.id, params, idempotency_key=f"{key}/params"
                )
                pushed = True
            book.record_created(key)
        else:  # another run wrote it while we waited
            brief, outcome = stored_brief(book, spec.id), Outcome.REUSED
    context.log.info(f"brief of {spec.id} {outcome.value}; pushed to World service: {pushed}")
    return MaterializeResult(
        metadata={
            "world": spec.name,
            "source": catalog.open(world).source,
            "outcome": outcome.value,
            "summary": brief.summary,
            "tone": brief.tone,
            "visual_style": brief.visual_style,
            "themes": ", ".join(brief.themes),
            "pushed_to_world_service": pushed,
            "target_characters": spec.characters,
            "posts_per_day": spec.posts_per_day,
        }
    )


CHARACTERS_ASSET, AVATARS_ASSET = AssetKey("characters"), AssetKey("character_avatars")
PROFILES = "profiles"
STAGE_NAMES = {
    PROFILES: "character profiles",
    CHARACTERS_ASSET: "characters",
    AVATARS_ASSET: "avatars",
}


class Cast:
    """One world's characters and avatars in the making: each character goes profile →
    CreateCharacter → avatar prompt → image → upload → attach on its own."""

    def __init__(
        self,
        context: AssetExecutionContext,
        spec: WorldSpec,
        brief: WorldBrief,
        work: WorldWork,
        character: CharacterResource,
    ) -> None:
        self.context, self.spec, self.brief, self.work = context, spec, brief, work
        self.book = work.ledger
        self.character = character
        self.selected = set(context.selected_asset_keys)
        self.stages = Stages(STAGE_NAMES)

    async def profile(self, slot: int, concept: CharacterConcept) -> Outcome:
        key = character_key(self.spec.id, slot)
        if not await self.work.claims.acquire(key, finished=lambda: self._profiled(key)):
            return Outcome.REUSED
        current = self.book.get(key)
        if current is not None and current.reached(Stage.TEXT_DONE):
            return Outcome.REUSED
        profile = await self.work.generate_text(
            key, CharacterProfile, render_character_detail(self.spec, self.brief, concept)
        )
        self.book.record_text(
            key,
            {
                "concept": concept.model_dump(mode="json"),
                "profile": profile.model_dump(mode="json"),
            },
        )
        return Outcome.CREATED

    def _profiled(self, key: str) -> bool:
        unit = self.book.get(key)
        return unit is not None and unit.reached(Stage.TEXT_DONE)

    async def create(self, unit: Unit) -> Outcome:
        """CreateCharacter with the profile as meta, once."""
        if not await self.work.claims.acquire(
            unit.key, finished=lambda: _unit_done(self.book, unit.key)
        ):
            return Outcome.REUSED
        unit = self.book.get(unit.key) or unit
        if unit.done:
            return Outcome.REUSED
        profile = character_profile(unit)
        assert unit.payload is not None
        meta = {
            **profile.model_dump(mode="json"),
            "role": unit.payload["concept"].get("role", ""),
            "source": "generia_pipelines",
            "unit_key": unit.key,
        }
        client = self.character.client

        async def call() -> str:
            made = await client.create_ai_character(
                self.spec.id, profile.display_name, meta=meta, idempotency_key=unit.key
            )
            return made.id

        await create_remote(
            unit,
            "character",
            call,
            book=self.book,
            client=client,
            honoured=self.character.honours_idempotency,
            log=self.context.log,
            claims=self.work.claims,
        )
        return Outcome.CREATED

    async def avatar(self, person: Unit) -> Outcome:
        """Prompt → image → presign (its own id) → PUT → confirm → UpdateCharacter, once."""
        spec, book = self.spec, self.book
        character_id = str(person.character_id)
        key = avatar_key(spec.id, character_id)
        if not await self.work.claims.acquire(key, finished=lambda: _unit_done(book, key)):
            return Outcome.REUSED
        unit = book.get(key)
        if unit is not None and unit.done:
            return Outcome.REUSED
        if unit is not None and unit.reached(Stage.CONFIRMED) and unit.media_id:
            # Confirmed before, the attach failed: attach that media (its bytes are gone).
            media_id, url = unit.media_id, variant_url(unit, "medium")
        else:
            profile = character_profile(person)
            prompt, _ = await self.work.text_for(
                key, AvatarPrompt, render_avatar_prompt(spec, self.brief, profile)
            )
            image, _ = await self.work.image_for(key, prompt.prompt, stable_seed(key))
            unit = book.get(key)
            if unit is None:  # pragma: no cover - image_for just wrote it
                raise RuntimeError(f"{key} vanished from the ledger")
            confirmed = await self.work.upload_and_confirm(
                unit, image, character_id, MediaType.CHARACTER_AVATAR
            )
            media_id, url = confirmed.media_id, confirmed.url("medium")
        self.work.claims.ensure(key)
        await self.character.client.update_character(
            character_id,
            avatar_media_id=media_id,
            avatar_url=url,
            world_id=spec.id,
            idempotency_key=f"{key}/attach",
        )
        book.record_created(key, media_id)
        return Outcome.CREATED

    async def settle(self, slot: int) -> Outcome:
        """A character with its profile: created, then given its avatar (as selected)."""
        key = character_key(self.spec.id, slot)
        unit = self.book.get(key)
        assert unit is not None
        if CHARACTERS_ASSET in self.selected and not unit.done:
            await self.stages.run(CHARACTERS_ASSET, key, self.create(unit))
            unit = self.book.get(key) or unit
        if AVATARS_ASSET in self.selected and unit.done and unit.character_id:
            await self.stages.run(
                AVATARS_ASSET, avatar_key(self.spec.id, str(unit.character_id)), self.avatar(unit)
            )
        return Outcome.CREATED

    async def profile_and_settle(self, pair: tuple[int, CharacterConcept]) -> Outcome:
        slot, concept = pair
        await self.stages.run(
            PROFILES, character_key(self.spec.id, slot), self.profile(slot, concept)
        )
        return await self.settle(slot)


async def plan_and_settle(cast: Cast, width: int) -> None:
    """Plan the missing characters batch by batch and settle each as soon as it is profiled.

    Each plan sees the ones before it, so plans form a chain; a batch's characters need only
    its own plan, so they are profiled, created and given avatars while the next batch is
    being planned. Characters profiled in an earlier run are settled at once.
    """
    spec, book, log = cast.spec, cast.book, cast.context.log

    def key_of(slot: int) -> str:
        return character_key(spec.id, slot)

    def all_profiled() -> bool:
        units = {u.slot_number: u for u in book.units(spec.id, CHARACTERS)}
        return all(units[s].reached(Stage.TEXT_DONE) for s in range(spec.characters))

    if not all_profiled():
        # One planner per world at a time: two would plan the same slots twice.
        await cast.work.claims.acquire(f"plan/{CHARACTERS}/{spec.id}", finished=all_profiled)
    for round_no in range(PLAN_ROUNDS):
        units = {u.slot_number: u for u in book.units(spec.id, CHARACTERS)}
        earlier = [
            CharacterConcept.model_validate(u.payload["concept"])
            for u in units.values()
            if u.reached(Stage.TEXT_DONE) and u.payload
        ]
        ready = [s for s in range(spec.characters) if units[s].reached(Stage.TEXT_DONE)]
        missing = [s for s in range(spec.characters) if s not in ready]
        tasks: list[asyncio.Task[Tally]] = []
        if round_no == 0 and ready:
            settle = fan_out(ready, key_of, cast.settle, limit=width, log=log, what="characters")
            tasks.append(asyncio.create_task(settle))
        try:
            for batch in plan_character_batches(missing) if missing else []:
                await cast.work.claims.acquire(key_of(batch[0]))  # the plan call is billed to it
                plan = await cast.work.generate_text(
                    key_of(batch[0]),
                    CharacterBatchPlan,
                    render_character_batch(spec, cast.brief, len(batch), earlier),
                )
                taken = {c.display_name.casefold() for c in earlier}
                fresh = [c for c in plan.characters if c.display_name.casefold() not in taken]
                pairs = list(zip(batch, fresh, strict=False))
                earlier.extend(concept for _, concept in pairs)
                made = fan_out(
                    pairs,
                    lambda pair: key_of(pair[0]),
                    cast.profile_and_settle,
                    limit=width,
                    log=log,
                    what="characters",
                )
                tasks.append(asyncio.create_task(made))
        finally:  # a failed plan still lets the characters in flight land in the ledger
            done = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        if not missing or not cast.stages.ok(PROFILES):
            return


async def make_cast(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    world: WorldResource,
    character: CharacterResource,
    media: MediaResource,
    runware: RunwareResource,
    text: TextGenerationResource,
    ledger: LedgerResource,
) -> tuple[list[MaterializeResult], Failure | None]:
    """The selected stages for every character; the results of the assets that finished and
    the failure of those that did not."""
    spec = await world_spec(context, catalog, world)
    book = ledger.ledger
    brief = stored_brief(book, spec.id)
    async with ledger.claims(context.run.run_id, context.log) as claims:
        work = WorldWork(
            spec.id, "", spec.setup_budget(), book, claims, text=text, runware=runware, media=media
        )
        cast = Cast(context, spec, brief, work, character)
        return await _make_cast(cast, text, runware)


async def _make_cast(
    cast: Cast, text: TextGenerationResource, runware: RunwareResource
) -> tuple[list[MaterializeResult], Failure | None]:
    context, spec, book = cast.context, cast.spec, cast.book
    book.plan(character_key(spec.id, slot) for slot in range(spec.characters))
    # The text and Runware clients bound their own calls; this many characters in flight
    # keeps both busy and lets uploads and attaching overlap the next images.
    width = text.max_concurrency + runware.concurrency
    if CHARACTERS_ASSET in cast.selected:
        await plan_and_settle(cast, width)
    else:
        people = [u.slot_number or 0 for u in created_characters(book, spec.id)]
        await fan_out(
            people,
            lambda slot: character_key(spec.id, slot),
            cast.settle,
            limit=width,
            log=context.log,
            what="avatars",
        )
    results: list[MaterializeResult] = []
    failure = cast.stages.failure()
    if CHARACTERS_ASSET in cast.selected:
        if not cast.stages.ok(PROFILES, CHARACTERS_ASSET):
            return results, failure
        units = book.units(spec.id, CHARACTERS)
        made = [u for u in units if u.done and (u.slot_number or 0) < spec.characters]
        if len(made) < spec.characters:
            return results, failure or Failure(
                f"only {len(made)} of {spec.characters} characters could be planned for "
                f"{spec.id}; the next run plans the rest"
            )
        results.append(characters_result(cast))
    if AVATARS_ASSET in cast.selected and cast.stages.ok(AVATARS_ASSET):
        results.append(await avatars_result(cast))
    return results, failure


def characters_result(cast: Cast) -> MaterializeResult:
    spec, book = cast.spec, cast.book
    existing = created_characters(book, spec.id)
    tally = cast.stages.tallies[CHARACTERS_ASSET]
    return MaterializeResult(
        asset_key=CHARACTERS_ASSET,
        check_results=[
            checks.character_count(
                book.units(spec.id, CHARACTERS), spec.characters, asset=CHARACTERS_ASSET
            ),
            checks.no_duplicates(book, spec.id, asset=CHARACTERS_ASSET),
        ],
        metadata={
            **tally.metadata(),
            "characters_total": len(existing),
            "target": spec.characters,
            "cost_usd": round(book.spent(spec.id, "").usd, 6),
            "preview": table_md(
                ["slot", "name", "id", "bio"],
                (
                    (
                        u.slot,
                        character_profile(u).display_name,
                        u.character_id,
                        character_profile(u).bio,
                    )
                    for u in existing
                ),
            ),
        },
    )


async def avatars_result(cast: Cast) -> MaterializeResult:
    spec, book = cast.spec, cast.book
    people = created_characters(book, spec.id)
    keys = [avatar_key(spec.id, str(u.character_id)) for u in people]
    avatars = [book.get(key) for key in keys]
    shown = [
        (character_profile(p).display_name, variant_url(a, "thumbnail"))
        for p, a in zip(people, avatars, strict=True)
        if a is not None
    ]
    verdict = await checks.avatars_confirmed(
        people, book, keys, cast.character.client, spec.id, asset=AVATARS_ASSET
    )
    return MaterializeResult(
        asset_key=AVATARS_ASSET,
        check_results=[verdict],
        metadata={
            **cast.stages.tallies[AVATARS_ASSET].metadata(),
            "avatars_total": sum(1 for a in avatars if a is not None and a.done),
            "cost_usd": round(book.cost(spec.id, kind="avatars"), 6),
            "previews": image_gallery(shown),
            "media_ids": MetadataValue.json(
                {str(p.character_id): a.media_id for p, a in zip(people, avatars, strict=True) if a}
            ),
        },
    )


@multi_asset(
    specs=[
        AssetSpec(
            CHARACTERS_ASSET,
            deps=[world_brief],
            description="Reconciles the world to its target character count: plan, profile, "
            "CreateCharacter.",
            group_name=GROUP,
            kinds={"python", "grpc"},
            partitions_def=worlds_partitions,
        ),
        AssetSpec(
            AVATARS_ASSET,
            deps=[CHARACTERS_ASSET],
            description="Per character without an avatar: prompt → image → presign → PUT → "
            "confirm → attach.",
            group_name=GROUP,
            kinds={"python", "grpc"},
            partitions_def=worlds_partitions,
        ),
    ],
    check_specs=[
        *checks.specs("characters", checks.CHARACTER_COUNT, checks.NO_DUPLICATES),
        *checks.specs("character_avatars", checks.AVATARS_CONFIRMED),
    ],
    partitions_def=worlds_partitions,
    can_subset=True,
    pool=RUNWARE_POOL,
    retry_policy=RETRY,
)
async def world_characters(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    world: WorldResource,
    character: CharacterResource,
    media: MediaResource,
    runware: RunwareResource,
    text: TextGenerationResource,
    ledger: LedgerResource,
):  # no return annotation: Dagster reads one as the outputs' types
    """The world's characters and their avatars, each avatar begun as soon as its character
    exists (one step, so avatars need not wait for the last character)."""
    results, failure = await fail_fast_on_bad_input(make_cast)(
        context, catalog, world, character, media, runware, text, ledger
    )
    for result in results:
        yield result
    if failure is not None:
        raise failure
