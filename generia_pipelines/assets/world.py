"""World setup assets (partitioned by world): the brief, the characters, their avatars."""

import json
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from generia_pipelines import checks
from generia_pipelines.catalog import WorldSpec
from generia_pipelines.cost_report import OTHER, cost_of
from generia_pipelines.generation.language import LANGUAGES
from generia_pipelines.generation.planning import CHARACTERS, avatar_key, brief_key
from generia_pipelines.generation.prompts import render_world_brief
from generia_pipelines.generation.schemas import WorldBrief
from generia_pipelines.ledger import Ledger, Stage
from generia_pipelines.partitions import InvalidWorldKey, validate_world_key, worlds_partitions
from generia_pipelines.resources.catalog import CatalogResource
from generia_pipelines.resources.grpc import CharacterResource, MediaResource, WorldResource
from generia_pipelines.resources.ledger import LedgerResource
from generia_pipelines.resources.runware import RunwareResource
from generia_pipelines.resources.text import TextGenerationResource
from generia_pipelines.units.causes import MissingPrerequisite
from generia_pipelines.units.keys import BRIEFS
from generia_pipelines.units.session import ClaimSession
from generia_pipelines.units.setup_state import (
    AVATARS,
    PROFILES,
    SetupState,
    character_profile,
    created_characters,
    make_cast,
    resting_characters,
    unit_done,
)

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
    Outcome,
    partition_spec,
    unit_work,
    variant_url,
)
from .failures import fail_fast_on_bad_input, steps_failure
from .metadata import contract_md, image_gallery, table_md

__all__ = ["character_profile", "created_characters", "stored_brief", "world_setup"]

BRIEF_KEY = AssetKey("world_brief")
CHARACTERS_KEY, AVATARS_KEY = AssetKey("characters"), AssetKey("character_avatars")
SETUP_ASSETS = (BRIEF_KEY, CHARACTERS_KEY, AVATARS_KEY)


def stored_brief(ledger: Ledger, world_id: str) -> WorldBrief:
    unit = ledger.get(brief_key(world_id))
    if unit is None or not unit.reached(Stage.TEXT_DONE) or not unit.payload:
        raise MissingPrerequisite(
            f"world {world_id!r} has no brief yet: materialize world_brief first"
        )
    return WorldBrief.model_validate(unit.payload["value"])


#: The payload entry naming what a brief was written from (WorldSpec.fingerprint).
FINGERPRINT = "world_fingerprint"
#: The payload entry naming the language the brief (and all the world's texts) are in.
LANGUAGE = "language"


def language_metadata(spec: WorldSpec) -> dict[str, str]:
    """The world's language as the UI shows it, and where it came from."""
    given = "language" in spec.model_fields_set
    return {
        "language": LANGUAGES[spec.language].label,
        "language_source": "the catalog" if given else "detected from the name and prompt",
    }


def reopen_if_changed(ledger: Ledger, spec: WorldSpec) -> str:
    """If the world's name, prompt or description (or its language) changed since its brief
    was written, forget the brief so that it is written anew, and say why; else "".

    The characters made from the old brief stay on the platform with their profiles; the
    new brief shapes the posts from now on. A brief written before fingerprints were kept
    is left alone (nothing says it is stale).
    """
    unit = ledger.get(brief_key(spec.id))
    if unit is None or not unit.payload or FINGERPRINT not in unit.payload:
        return ""
    before, now = str(unit.payload[FINGERPRINT]), spec.fingerprint()
    if before == now:
        return ""
    ledger.reopen_text(unit.key)
    return (
        f"the world's name, prompt or description changed, or its language did, since its "
        "brief was written "
        f"(fingerprint {before} -> {now}): the brief is written anew; characters made "
        "before keep their profiles, and posts from now on follow the new brief"
    )


def _params(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


async def make_brief(
    spec: WorldSpec,
    claims: ClaimSession,
    world_service: WorldResource,
    text: TextGenerationResource,
    ledger: Ledger,
    source: str,
) -> MaterializeResult:
    """The world's structured description (setting, tone, visual style) everything draws on."""
    key = brief_key(spec.id)
    pushed = False
    changed = ""
    period_work = unit_work(spec.id, "", spec.setup_budget(), ledger, claims, text=text)
    if await claims.acquire(key, finished=lambda: unit_done(ledger, key)):
        changed = reopen_if_changed(ledger, spec)
        if changed:
            period_work.log.warning(f"brief of {spec.id}: {changed}")
        notes = {FINGERPRINT: spec.fingerprint(), LANGUAGE: spec.language}
        brief, outcome, unit = await period_work.text_for(
            key, WorldBrief, render_world_brief(spec), notes=notes
        )
        if world_service.configured and not unit.done:
            # Merge into the world's params: other keys belong to the platform.
            claims.ensure(key)
            current = await world_service.client.get_world(spec.id)
            params = _params(current.params)
            params["brief"] = {**brief.model_dump(mode="json"), LANGUAGE: spec.language}
            await world_service.client.update_world_params(
                spec.id, params, idempotency_key=f"{key}/params"
            )
            pushed = True
        ledger.record_created(key)
    else:  # another run wrote it while we waited
        brief, outcome = stored_brief(ledger, spec.id), Outcome.REUSED
    period_work.log.info(f"brief of {spec.id} {outcome.value}; pushed to World service: {pushed}")
    return MaterializeResult(
        asset_key=BRIEF_KEY,
        metadata={
            "world": spec.name,
            **language_metadata(spec),
            "source": source,
            "outcome": "regenerated" if changed else outcome.value,
            "regenerated_because": changed or "not regenerated",
            "summary": brief.summary,
            "tone": brief.tone,
            "visual_style": brief.visual_style,
            "themes": ", ".join(brief.themes),
            "pushed_to_world_service": pushed,
            "cost_usd": cost_of(ledger.paid_calls(spec.id), {BRIEFS}),
            "target_characters": spec.characters,
            "posts_per_day": spec.posts_per_day,
        },
    )


async def make_characters(
    spec: WorldSpec,
    claims: ClaimSession,
    selected: set[AssetKey],
    character: CharacterResource,
    media: MediaResource,
    runware: RunwareResource,
    text: TextGenerationResource,
    ledger: Ledger,
) -> tuple[list[MaterializeResult], Failure | None]:
    """The selected stages for every character; the results of the assets that finished and
    the failure of those that did not."""
    brief = stored_brief(ledger, spec.id)
    period_work = unit_work(
        spec.id, "", spec.setup_budget(), ledger, claims, text=text, runware=runware, media=media
    )
    setup_state = SetupState(
        spec,
        brief,
        period_work,
        character.client,
        honours_idempotency=character.honours_idempotency,
        make_characters=CHARACTERS_KEY in selected,
        make_avatars=AVATARS_KEY in selected,
    )
    # The text and Runware clients bound their own calls; this many characters in
    # flight keeps both busy and lets uploads and attaching overlap the next images.
    await make_cast(setup_state, width=text.max_concurrency + runware.concurrency)
    results: list[MaterializeResult] = []
    failure = steps_failure(setup_state.steps)
    if setup_state.make_characters:
        if not setup_state.steps.ok(PROFILES, CHARACTERS):
            return results, failure
        units = ledger.units(spec.id, CHARACTERS)
        made = [u for u in units if u.done and (u.slot_number or 0) < spec.characters]
        if len(made) < spec.characters:
            return results, failure or Failure(
                f"only {len(made)} of {spec.characters} characters could be planned for "
                f"{spec.id}; the next run plans the rest"
            )
        results.append(characters_result(setup_state))
    if setup_state.make_avatars and setup_state.steps.ok(AVATARS):
        results.append(await avatars_result(setup_state))
    return results, failure


@dataclass(frozen=True)
class SetupResources:
    """The resources a world's setup uses."""

    world_service: WorldResource
    character: CharacterResource
    media: MediaResource
    runware: RunwareResource
    text: TextGenerationResource
    ledger: LedgerResource


class WorldSetups:
    """A run's worlds to set up: the resources, the run's claims and the selected assets."""

    def __init__(
        self,
        context: AssetExecutionContext,
        worlds: dict[str, WorldSpec | Exception],
        source: str,
        claims: ClaimSession,
        resources: SetupResources,
    ) -> None:
        self.worlds, self.source, self.claims, self.resources = worlds, source, claims, resources
        self.selected = set(context.selected_asset_keys)

    async def world(self, key: str) -> PartitionOutcome:
        """The selected setup assets of one world, in order: brief, characters, avatars."""
        spec = self.worlds[validate_world_key(key)]
        if isinstance(spec, Exception):
            raise spec
        r = self.resources
        ledger = r.ledger.ledger
        outcome = PartitionOutcome(key)
        if BRIEF_KEY in self.selected:
            outcome.results.append(
                await make_brief(spec, self.claims, r.world_service, r.text, ledger, self.source)
            )
        if self.selected & {CHARACTERS_KEY, AVATARS_KEY}:
            results, outcome.failure = await make_characters(
                spec, self.claims, self.selected, r.character, r.media, r.runware, r.text, ledger
            )
            outcome.results.extend(results)
        return outcome


def is_world_key(key: str) -> bool:
    try:
        validate_world_key(key)
    except InvalidWorldKey:
        return False
    return True


async def make_setups(
    context: AssetExecutionContext, catalog: CatalogResource, resources: SetupResources
) -> BaseException | None:
    """Every world of the run, each reported as it finishes; the run's failure, if any."""
    keys = run_partition_keys(context)
    worlds_catalog = catalog.open(resources.world_service)
    # A bad key fails its own partition (in ``world``), naming the problem.
    worlds = await worlds_catalog.get_worlds([key for key in keys if is_world_key(key)])
    skip = materialized_by_this_run(
        context, keys, [key for key in SETUP_ASSETS if key in context.selected_asset_keys]
    )
    text, runware = resources.text, resources.runware
    async with resources.ledger.claims(context.run.run_id, context.log) as claims:
        setups = WorldSetups(context, worlds, worlds_catalog.source, claims, resources)
        characters_each = max(
            (s.characters for s in worlds.values() if isinstance(s, WorldSpec)), default=1
        )
        report = await run_partitions(
            context,
            keys,
            setups.world,
            in_flight=partitions_in_flight(
                len(keys), characters_each, text.max_concurrency + runware.concurrency
            ),
            skip=skip,
        )
    return report.failure("worlds")


def characters_result(setup_state: SetupState) -> MaterializeResult:
    spec, ledger = setup_state.spec, setup_state.ledger
    existing = created_characters(ledger, spec.id)
    resting = resting_characters(ledger, spec)
    tally = setup_state.steps.tallies[CHARACTERS]
    return MaterializeResult(
        asset_key=CHARACTERS_KEY,
        check_results=[
            checks.character_count(
                ledger.units(spec.id, CHARACTERS), spec.characters, asset=CHARACTERS_KEY
            ),
            checks.no_duplicates(ledger, spec.id, asset=CHARACTERS_KEY),
        ],
        metadata={
            **tally.metadata(),
            "characters_total": len(existing),
            "target": spec.characters,
            # The target was lowered: these stay on the platform but get no new posts.
            "characters_beyond_target": len(resting),
            "platform_contract": contract_md(setup_state.characters),
            "resting_characters": ", ".join(character_profile(u).display_name for u in resting)
            or "none",
            # The characters' own texts and plans; the avatars show their images' cost.
            "cost_usd": cost_of(ledger.paid_calls(spec.id), {CHARACTERS, OTHER}),
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


async def avatars_result(setup_state: SetupState) -> MaterializeResult:
    spec, ledger = setup_state.spec, setup_state.ledger
    character_units = created_characters(ledger, spec.id)
    keys = [avatar_key(spec.id, str(u.character_id)) for u in character_units]
    avatars = [ledger.get(key) for key in keys]
    shown = [
        (character_profile(p).display_name, variant_url(a, "thumbnail"))
        for p, a in zip(character_units, avatars, strict=True)
        if a is not None
    ]
    verdict = await checks.avatars_confirmed(
        character_units, ledger, keys, setup_state.characters, spec.id, asset=AVATARS_KEY
    )
    return MaterializeResult(
        asset_key=AVATARS_KEY,
        check_results=[verdict],
        metadata={
            **setup_state.steps.tallies[AVATARS].metadata(),
            "avatars_total": sum(1 for a in avatars if a is not None and a.done),
            "cost_usd": round(ledger.cost(spec.id, kind="avatars"), 6),
            "platform_contract": contract_md(setup_state.characters),
            "previews": image_gallery(shown),
            "media_ids": MetadataValue.json(
                {
                    str(p.character_id): a.media_id
                    for p, a in zip(character_units, avatars, strict=True)
                    if a
                }
            ),
        },
    )


@multi_asset(
    specs=[
        partition_spec(
            BRIEF_KEY,
            description="The world's structured description (setting, tone, visual style) "
            "everything draws on.",
            kinds={"python", "grpc"},
            partitions_def=worlds_partitions,
        ),
        partition_spec(
            CHARACTERS_KEY,
            deps=[BRIEF_KEY],
            description="Reconciles the world to its target character count: plan, profile, "
            "CreateCharacter.",
            kinds={"python", "grpc"},
            partitions_def=worlds_partitions,
        ),
        partition_spec(
            AVATARS_KEY,
            deps=[CHARACTERS_KEY],
            description="Per character without an avatar: prompt → image → presign → PUT → "
            "confirm → attach.",
            kinds={"python", "grpc"},
            partitions_def=worlds_partitions,
        ),
    ],
    check_specs=[
        *checks.specs(
            "characters",
            checks.CHARACTER_COUNT,
            checks.NO_DUPLICATES,
            partitions_def=worlds_partitions,
        ),
        *checks.specs(
            "character_avatars", checks.AVATARS_CONFIRMED, partitions_def=worlds_partitions
        ),
    ],
    partitions_def=worlds_partitions,
    backfill_policy=backfill_policy(),
    can_subset=True,
    pool=RUNWARE_POOL,
    retry_policy=RETRY,
)
async def world_setup(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    world: WorldResource,
    character: CharacterResource,
    media: MediaResource,
    runware: RunwareResource,
    text: TextGenerationResource,
    ledger: LedgerResource,
):  # no return annotation: Dagster reads one as the outputs' types
    """The world's brief, its characters and their avatars, each avatar begun as soon as its
    character exists; in a range run, every world of the range, each reported when done."""
    resources = SetupResources(world, character, media, runware, text, ledger)
    failure = await fail_fast_on_bad_input(make_setups)(context, catalog, resources)
    if failure is not None:
        raise failure
    for _ in ():  # nothing to yield: each world was reported by log_event as it finished
        yield
