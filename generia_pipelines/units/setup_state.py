"""A world's cast in the making: each character goes profile → CreateCharacter → avatar
prompt → image → upload → attach on its own, under its lease; no Dagster in here.

Characters are planned in batches of at most 10, each plan seeing the ones before it, by
one planner per world at a time (a lease on ``plan/characters/{world}``); a batch's
characters are profiled, created and given avatars while the next batch is planned.
"""

from __future__ import annotations

import asyncio

from generia_pipelines.catalog import WorldSpec
from generia_pipelines.clients.platform import CharacterClient
from generia_pipelines.clients.records import MediaType
from generia_pipelines.clients.text.base import stable_seed
from generia_pipelines.generation.planning import plan_character_batches
from generia_pipelines.generation.prompts import (
    render_avatar_prompt,
    render_character_batch,
    render_character_detail,
)
from generia_pipelines.generation.schemas import (
    AvatarPrompt,
    CharacterBatchPlan,
    CharacterConcept,
    CharacterProfile,
    WorldBrief,
)
from generia_pipelines.ledger import Ledger, Stage, Unit
from generia_pipelines.units.fanout import Outcome, Step, StepTallies, Tally, fan_out
from generia_pipelines.units.keys import CHARACTERS, avatar_key, character_key
from generia_pipelines.units.model import variant_url
from generia_pipelines.units.paid import TextRecord
from generia_pipelines.units.work import UnitWork, create_remote

#: Planning rounds per materialization: a model that plans fewer characters than asked gets
#: asked again for the rest, a bounded number of times.
PLAN_ROUNDS = 3
PROFILES, AVATARS = "profiles", "character_avatars"
STEP_LABELS = {PROFILES: "character profiles", CHARACTERS: "characters", AVATARS: "avatars"}


def unit_done(ledger: Ledger, key: str) -> bool:
    unit = ledger.get(key)
    return unit is not None and unit.done


def character_profile(unit: Unit) -> CharacterProfile:
    """The profile a character unit was created from."""
    if unit.payload is None or "profile" not in unit.payload:
        raise ValueError(f"{unit.key} has no profile yet")
    return CharacterProfile.model_validate(unit.payload["profile"])


def created_characters(ledger: Ledger, world_id: str) -> list[Unit]:
    """The world's characters that exist on the platform, in slot order."""
    return [u for u in ledger.units(world_id, CHARACTERS) if u.done and u.character_id]


def posting_characters(ledger: Ledger, spec: WorldSpec) -> list[Unit]:
    """The characters who get posts: those within the world's target count. A world whose
    count was lowered keeps its other characters on the platform, without new posts."""
    return [
        u for u in created_characters(ledger, spec.id) if (u.slot_number or 0) < spec.characters
    ]


def resting_characters(ledger: Ledger, spec: WorldSpec) -> list[Unit]:
    """The characters beyond the world's target count (it was lowered): no new posts."""
    return [
        u for u in created_characters(ledger, spec.id) if (u.slot_number or 0) >= spec.characters
    ]


class SetupState:
    """One world's characters and avatars in the making: each character goes profile →
    CreateCharacter → avatar prompt → image → upload → attach on its own."""

    def __init__(
        self,
        spec: WorldSpec,
        brief: WorldBrief,
        period_work: UnitWork,
        characters: CharacterClient,
        *,
        honours_idempotency: bool,
        make_characters: bool = True,
        make_avatars: bool = True,
    ) -> None:
        self.spec, self.brief, self.period_work = spec, brief, period_work
        self.ledger = period_work.ledger
        self.characters = characters
        self.honours_idempotency = honours_idempotency
        self.make_characters, self.make_avatars = make_characters, make_avatars
        self.steps = StepTallies(STEP_LABELS)

    async def profile(self, slot: int, concept: CharacterConcept) -> Step:
        """The character's profile from its planned concept, once."""
        key = character_key(self.spec.id, slot)
        acquired = await self.period_work.claims.acquire(key, finished=lambda: self._profiled(key))
        current = self.ledger.get(key)
        if current is None:  # pragma: no cover - planned before any profiling
            raise RuntimeError(f"{key} is not in the ledger")
        if not acquired or current.reached(Stage.TEXT_DONE):
            return Outcome.REUSED, current

        def payload(profile: CharacterProfile) -> TextRecord:
            return {
                "concept": concept.model_dump(mode="json"),
                "profile": profile.model_dump(mode="json"),
            }, None

        _, profiled = await self.period_work.write_text(
            key,
            CharacterProfile,
            render_character_detail(self.spec, self.brief, concept),
            payload,
        )
        return Outcome.CREATED, profiled

    def _profiled(self, key: str) -> bool:
        unit = self.ledger.get(key)
        return unit is not None and unit.reached(Stage.TEXT_DONE)

    async def create(self, unit: Unit) -> Step:
        """CreateCharacter with the profile as meta, once."""
        acquired = await self.period_work.claims.acquire(
            unit.key, finished=lambda: unit_done(self.ledger, unit.key)
        )
        unit = self.ledger.get(unit.key) or unit  # as it stands now that we hold it
        if not acquired or unit.done:
            return Outcome.REUSED, unit
        profile = character_profile(unit)
        concept = (unit.payload or {}).get("concept") or {}
        meta = {
            **profile.model_dump(mode="json"),
            "role": concept.get("role", ""),
            "source": "generia_pipelines",
            "unit_key": unit.key,
        }
        client = self.characters

        async def call() -> str:
            made = await client.create_ai_character(
                self.spec.id, profile.display_name, meta=meta, idempotency_key=unit.key
            )
            return made.id

        created = await create_remote(
            unit,
            "character",
            call,
            ledger=self.ledger,
            client=client,
            honoured=self.honours_idempotency,
            log=self.period_work.log,
            claims=self.period_work.claims,
        )
        return Outcome.CREATED, created

    async def avatar(self, person: Unit) -> Step:
        """Prompt → image → presign (its own id) → PUT → confirm → UpdateCharacter, once."""
        spec, ledger = self.spec, self.ledger
        character_id = str(person.character_id)
        key = avatar_key(spec.id, character_id)
        acquired = await self.period_work.claims.acquire(
            key, finished=lambda: unit_done(ledger, key)
        )
        unit = ledger.get(key)  # as it stands now that we hold it (None: never started)
        if unit is not None and (unit.done or not acquired):
            return Outcome.REUSED, unit
        if unit is not None and unit.reached(Stage.CONFIRMED) and unit.media_id:
            # Confirmed before, the attach failed: attach that media (its bytes are gone).
            media_id, url = unit.media_id, variant_url(unit, "medium")
        else:
            profile = character_profile(person)
            prompt, _, unit = await self.period_work.text_for(
                key, AvatarPrompt, render_avatar_prompt(spec, self.brief, profile)
            )
            image, _ = await self.period_work.image_for(key, prompt.prompt, stable_seed(key))
            # The image changes none of what the upload resumes from (media id, attempts).
            confirmed, unit = await self.period_work.upload_and_confirm(
                unit, image, character_id, MediaType.CHARACTER_AVATAR
            )
            media_id, url = confirmed.media_id, confirmed.url("medium")
        self.period_work.claims.ensure(key)
        await self.characters.update_character(
            character_id,
            avatar_media_id=media_id,
            avatar_url=url,
            world_id=spec.id,
            idempotency_key=f"{key}/attach",
        )
        return Outcome.CREATED, ledger.record_created(key, media_id)

    async def settle(self, slot: int) -> Outcome:
        """A character with its profile: created, then given its avatar (as selected)."""
        key = character_key(self.spec.id, slot)
        unit = self.ledger.get(key)
        if unit is None:  # pragma: no cover - planned before any settling
            raise RuntimeError(f"{key} is not in the ledger")
        if self.make_characters and not unit.done:
            unit = await self.steps.run(CHARACTERS, key, self.create(unit))
        if self.make_avatars and unit.done and unit.character_id:
            await self.steps.run(
                AVATARS, avatar_key(self.spec.id, str(unit.character_id)), self.avatar(unit)
            )
        return Outcome.CREATED

    async def profile_and_settle(self, pair: tuple[int, CharacterConcept]) -> Outcome:
        slot, concept = pair
        await self.steps.run(
            PROFILES, character_key(self.spec.id, slot), self.profile(slot, concept)
        )
        return await self.settle(slot)


async def plan_and_settle(setup_state: SetupState, width: int) -> None:
    """Plan the missing characters batch by batch and settle each as soon as it is profiled.

    Each plan sees the ones before it, so plans form a chain; a batch's characters need only
    its own plan, so they are profiled, created and given avatars while the next batch is
    being planned. Characters profiled in an earlier run are settled at once.
    """
    spec, ledger, log = setup_state.spec, setup_state.ledger, setup_state.period_work.log

    def key_of(slot: int) -> str:
        return character_key(spec.id, slot)

    def all_profiled() -> bool:
        units = {u.slot_number: u for u in ledger.units(spec.id, CHARACTERS)}
        return all(units[s].reached(Stage.TEXT_DONE) for s in range(spec.characters))

    if not all_profiled():
        # One planner per world at a time: two would plan the same slots twice.
        await setup_state.period_work.claims.acquire(
            f"plan/{CHARACTERS}/{spec.id}", finished=all_profiled
        )
    for round_no in range(PLAN_ROUNDS):
        units = {u.slot_number: u for u in ledger.units(spec.id, CHARACTERS)}
        earlier = [
            CharacterConcept.model_validate(u.payload["concept"])
            for u in units.values()
            if u.reached(Stage.TEXT_DONE) and u.payload
        ]
        ready = [s for s in range(spec.characters) if units[s].reached(Stage.TEXT_DONE)]
        missing = [s for s in range(spec.characters) if s not in ready]
        tasks: list[asyncio.Task[Tally]] = []
        if round_no == 0 and ready:
            settle = fan_out(
                ready, key_of, setup_state.settle, limit=width, log=log, what="characters"
            )
            tasks.append(asyncio.create_task(settle))
        try:
            for batch in plan_character_batches(missing) if missing else []:
                await setup_state.period_work.claims.acquire(
                    key_of(batch[0])
                )  # the plan call is billed to it
                plan = await setup_state.period_work.generate_text(
                    key_of(batch[0]),
                    CharacterBatchPlan,
                    render_character_batch(spec, setup_state.brief, len(batch), earlier),
                )
                taken = {c.display_name.casefold() for c in earlier}
                fresh = [c for c in plan.characters if c.display_name.casefold() not in taken]
                pairs = list(zip(batch, fresh, strict=False))
                earlier.extend(concept for _, concept in pairs)
                made = fan_out(
                    pairs,
                    lambda pair: key_of(pair[0]),
                    setup_state.profile_and_settle,
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
        if not missing or not setup_state.steps.ok(PROFILES):
            return


async def make_cast(setup_state: SetupState, width: int) -> None:
    """Every selected stage for every character of the world (``width`` in flight)."""
    spec, ledger = setup_state.spec, setup_state.ledger
    ledger.plan(character_key(spec.id, slot) for slot in range(spec.characters))
    if setup_state.make_characters:
        await plan_and_settle(setup_state, width)
        return
    character_units = [u.slot_number or 0 for u in created_characters(ledger, spec.id)]
    await fan_out(
        character_units,
        lambda slot: character_key(spec.id, slot),
        setup_state.settle,
        limit=width,
        log=setup_state.period_work.log,
        what="avatars",
    )
