"""World setup assets (partitioned by world): the brief, the characters, their avatars."""

import asyncio
import json
from typing import Any

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

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
    Tally,
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
    work = WorldWork(spec.id, "", spec.setup_budget(), book, text=text)
    brief, outcome = await work.text_for(key, WorldBrief, render_world_brief(spec))
    pushed = False
    unit = book.get(key)
    if world.configured and unit is not None and not unit.done:
        # Merge into the world's params: other keys belong to the platform.
        current = await world.client.get_world(spec.id)
        params = _params(current.params)
        params["brief"] = brief.model_dump(mode="json")
        await world.client.update_world_params(spec.id, params, idempotency_key=f"{key}/params")
        pushed = True
    book.record_created(key)
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


@asset(
    partitions_def=worlds_partitions,
    deps=[world_brief],
    check_specs=checks.specs("characters", checks.CHARACTER_COUNT, checks.NO_DUPLICATES),
    group_name=GROUP,
    kinds={"python", "grpc"},
    pool=TEXT_POOL,
    retry_policy=RETRY,
)
@fail_fast_on_bad_input
async def characters(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    world: WorldResource,
    character: CharacterResource,
    text: TextGenerationResource,
    ledger: LedgerResource,
) -> MaterializeResult:
    """Reconciles the world to its target character count: plan, detail, CreateCharacter."""
    spec = await world_spec(context, catalog, world)
    book = ledger.ledger
    brief = stored_brief(book, spec.id)
    work = WorldWork(spec.id, "", spec.setup_budget(), book, text=text)
    book.plan(character_key(spec.id, slot) for slot in range(spec.characters))

    async def detail(pair: tuple[int, CharacterConcept]) -> Outcome:
        slot, concept = pair
        key = character_key(spec.id, slot)
        profile = await work.generate_text(
            key, CharacterProfile, render_character_detail(spec, brief, concept)
        )
        book.record_text(
            key,
            {
                "concept": concept.model_dump(mode="json"),
                "profile": profile.model_dump(mode="json"),
            },
        )
        return Outcome.CREATED

    for _round in range(PLAN_ROUNDS):
        units = {u.slot_number: u for u in book.units(spec.id, CHARACTERS)}
        earlier = [
            CharacterConcept.model_validate(u.payload["concept"])
            for u in units.values()
            if u.reached(Stage.TEXT_DONE) and u.payload
        ]
        missing = [s for s in range(spec.characters) if not units[s].reached(Stage.TEXT_DONE)]
        if not missing:
            break
        # Each plan sees the ones before it, so plans form a chain; a batch's profiles need
        # only its own plan, so they are written while the next batch is being planned.
        profiles: list[asyncio.Task[Tally]] = []
        try:
            for batch in plan_character_batches(missing):
                plan = await work.generate_text(
                    character_key(spec.id, batch[0]),
                    CharacterBatchPlan,
                    render_character_batch(spec, brief, len(batch), earlier),
                )
                taken = {c.display_name.casefold() for c in earlier}
                fresh = [c for c in plan.characters if c.display_name.casefold() not in taken]
                pairs = list(zip(batch, fresh, strict=False))
                earlier.extend(concept for _, concept in pairs)
                profiles.append(
                    asyncio.create_task(
                        fan_out(
                            pairs,
                            lambda pair: character_key(spec.id, pair[0]),
                            detail,
                            limit=text.max_concurrency,
                            log=context.log,
                            what="character profiles",
                        )
                    )
                )
        finally:  # a failed plan still lets the profiles in flight land in the ledger
            tallies = await asyncio.gather(*profiles, return_exceptions=True)
        for tally in tallies:
            if isinstance(tally, BaseException):
                raise tally
            fail_if_any(tally, "character profiles")

    async def create(unit: Unit) -> Outcome:
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

        async def call() -> str:
            made = await character.client.create_ai_character(
                spec.id, profile.display_name, meta=meta, idempotency_key=unit.key
            )
            return made.id

        await create_remote(
            unit,
            "character",
            call,
            book=book,
            client=character.client,
            honoured=character.honours_idempotency,
            log=context.log,
        )
        return Outcome.CREATED

    ready = [
        u
        for u in book.units(spec.id, CHARACTERS)
        if u.reached(Stage.TEXT_DONE) and (u.slot_number or 0) < spec.characters
    ]
    tally = await fan_out(
        ready, lambda u: u.key, create, limit=32, log=context.log, what="characters"
    )
    fail_if_any(tally, "characters")
    if len(ready) < spec.characters:
        raise Failure(
            f"only {len(ready)} of {spec.characters} characters could be planned for "
            f"{spec.id}; the next run plans the rest"
        )
    existing = created_characters(book, spec.id)
    return MaterializeResult(
        check_results=[
            checks.character_count(book.units(spec.id, CHARACTERS), spec.characters),
            checks.no_duplicates(book, spec.id),
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


@asset(
    partitions_def=worlds_partitions,
    deps=[characters],
    check_specs=checks.specs("character_avatars", checks.AVATARS_CONFIRMED),
    group_name=GROUP,
    kinds={"python", "grpc"},
    pool=RUNWARE_POOL,
    retry_policy=RETRY,
)
@fail_fast_on_bad_input
async def character_avatars(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    world: WorldResource,
    character: CharacterResource,
    media: MediaResource,
    runware: RunwareResource,
    text: TextGenerationResource,
    ledger: LedgerResource,
) -> MaterializeResult:
    """Per character without an avatar: prompt → image → presign → PUT → confirm → attach."""
    spec = await world_spec(context, catalog, world)
    book = ledger.ledger
    brief = stored_brief(book, spec.id)
    work = WorldWork(
        spec.id, "", spec.setup_budget(), book, text=text, runware=runware, media=media
    )
    people = created_characters(book, spec.id)
    book.plan(avatar_key(spec.id, str(u.character_id)) for u in people)

    async def avatar(person: Unit) -> Outcome:
        character_id = str(person.character_id)
        key = avatar_key(spec.id, character_id)
        unit = book.get(key)
        if unit is not None and unit.done:
            return Outcome.REUSED
        if unit is not None and unit.reached(Stage.CONFIRMED) and unit.media_id:
            # Confirmed before, the attach failed: attach that media (its bytes are gone).
            media_id, url = unit.media_id, variant_url(unit, "medium")
        else:
            profile = character_profile(person)
            prompt, _ = await work.text_for(
                key, AvatarPrompt, render_avatar_prompt(spec, brief, profile)
            )
            image, _ = await work.image_for(key, prompt.prompt, stable_seed(key))
            unit = book.get(key)
            assert unit is not None
            confirmed = await work.upload_and_confirm(
                unit, image, character_id, MediaType.CHARACTER_AVATAR
            )
            media_id, url = confirmed.media_id, confirmed.url("medium")
        await character.client.update_character(
            character_id,
            avatar_media_id=media_id,
            avatar_url=url,
            world_id=spec.id,
            idempotency_key=f"{key}/attach",
        )
        book.record_created(key, media_id)
        return Outcome.CREATED

    tally = await fan_out(
        people,
        lambda u: avatar_key(spec.id, str(u.character_id)),
        avatar,
        # The text and Runware clients bound their own calls; this wider limit lets
        # prompts be written while images are drawn, and uploads overlap the next images.
        limit=runware.concurrency + text.max_concurrency,
        log=context.log,
        what="avatars",
    )
    fail_if_any(tally, "avatars")
    avatars = [book.get(avatar_key(spec.id, str(u.character_id))) for u in people]
    shown = [
        (character_profile(p).display_name, variant_url(a, "thumbnail"))
        for p, a in zip(people, avatars, strict=True)
        if a is not None
    ]
    keys = [avatar_key(spec.id, str(u.character_id)) for u in people]
    verdict = await checks.avatars_confirmed(people, book, keys, character.client, spec.id)
    return MaterializeResult(
        check_results=[verdict],
        metadata={
            **tally.metadata(),
            "avatars_total": sum(1 for a in avatars if a is not None and a.done),
            "cost_usd": round(book.cost(spec.id, kind="avatars"), 6),
            "previews": image_gallery(shown),
            "media_ids": MetadataValue.json(
                {str(p.character_id): a.media_id for p, a in zip(people, avatars, strict=True) if a}
            ),
        },
    )
