"""A world's day of posts in the making: each post goes draft → image → upload → confirm →
publish on its own, under its lease; no Dagster in here.

Authors are spread fairly within the day and across the recent days; a post's draft sees
its author's recent captions. A post another run holds is waited for and, if that run
publishes it, reused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import date, timedelta

from generia_pipelines.catalog import WorldSpec
from generia_pipelines.clients.platform import PostClient
from generia_pipelines.clients.records import MediaType
from generia_pipelines.clients.text.base import stable_seed
from generia_pipelines.generation.planning import assign_post_authors
from generia_pipelines.generation.prompts import render_post_draft
from generia_pipelines.generation.schemas import PostDraft, WorldBrief
from generia_pipelines.ledger import Ledger, Stage, Unit
from generia_pipelines.units.fanout import Outcome, Step, StepTallies, fan_out
from generia_pipelines.units.keys import POSTS, post_key
from generia_pipelines.units.setup_state import character_profile
from generia_pipelines.units.work import UnitWork, create_remote

DRAFT_STEP, IMAGE_STEP = "post_drafts", "post_images"
DAY_STEPS = (DRAFT_STEP, IMAGE_STEP, POSTS)
STEP_LABELS = {DRAFT_STEP: "post drafts", IMAGE_STEP: "post images", POSTS: "posts"}


#: Days of history a character's next post sees, and fairness looks back over.
RECENT_DAYS = 7


def draft_of(unit: Unit) -> PostDraft:
    """The draft a post unit holds."""
    if unit.payload is None or "value" not in unit.payload:
        raise ValueError(f"{unit.key} has no draft yet")
    return PostDraft.model_validate(unit.payload["value"])


def day_units(ledger: Ledger, world_id: str, day: date) -> list[Unit]:
    return ledger.units(world_id, POSTS, day.isoformat())


def recent_posts(ledger: Ledger, world_id: str, day: date) -> list[Unit]:
    """Drafted posts of the days before ``day`` in the recent window, newest first."""
    earliest = (day - timedelta(days=RECENT_DAYS)).isoformat()
    units = [
        u
        for u in ledger.units(world_id, POSTS)
        if earliest <= u.partition < day.isoformat() and u.reached(Stage.TEXT_DONE)
    ]
    return sorted(units, key=lambda u: (u.partition, u.slot_number or 0), reverse=True)


class DayState:
    """One world-day's inputs and per-stage tallies, shared by the per-post coroutines."""

    def __init__(
        self,
        spec: WorldSpec,
        day: date,
        period_work: UnitWork,
        posts: PostClient,
        *,
        honours_idempotency: bool,
    ) -> None:
        self.spec, self.day, self.period_work = spec, day, period_work
        self.ledger = period_work.ledger
        self.posts, self.honours_idempotency = posts, honours_idempotency
        self.keys = [post_key(spec.id, day, slot) for slot in range(spec.posts_per_day)]
        self.steps = StepTallies(STEP_LABELS)


def plan_authors(state: DayState, character_units: dict[str, Unit]) -> tuple[list[str], list[Unit]]:
    """The day's units planned, and a fair author for each slot (kept if already drafted)."""
    ledger, spec, day = state.ledger, state.spec, state.day
    ledger.plan(state.keys)
    today = {u.key: u for u in day_units(ledger, spec.id, day)}
    assigned = {
        slot: str(today[key].character_id)
        for slot, key in enumerate(state.keys)
        if today[key].reached(Stage.TEXT_DONE) and today[key].character_id in character_units
    }
    history = recent_posts(ledger, spec.id, day)
    counts = Counter(str(u.character_id) for u in history)
    last = {}
    for unit in reversed(history):  # oldest first, so the newest date wins
        last[str(unit.character_id)] = unit.partition
    authors = assign_post_authors(
        list(character_units), spec.posts_per_day, day, counts, last_posted=last, assigned=assigned
    )
    return authors, history


async def write_draft(
    state: DayState, unit: Unit, author: Unit, history: list[Unit], brief: WorldBrief
) -> Step:
    """The post's caption, tags and image prompt, with its author's recent posts as context."""
    if unit.reached(Stage.TEXT_DONE):
        return Outcome.REUSED, unit
    author_id = str(author.character_id)
    recent = [draft_of(u).caption for u in history if u.character_id == author_id]
    _, drafted = await state.period_work.write_text(
        unit.key,
        PostDraft,
        render_post_draft(state.spec, brief, character_profile(author), recent, state.day),
        lambda value: ({"value": value.model_dump(mode="json")}, author_id),
    )
    return Outcome.CREATED, drafted


async def draw_image(state: DayState, unit: Unit) -> Step:
    """Runware image → presign with the author's id → PUT → ConfirmUpload."""
    if unit.reached(Stage.CONFIRMED):
        return Outcome.REUSED, unit
    image, _ = await state.period_work.image_for(
        unit.key, draft_of(unit).image_prompt, stable_seed(unit.key)
    )
    # The image changes none of what the upload resumes from (media id, attempts).
    _, confirmed = await state.period_work.upload_and_confirm(
        unit, image, str(unit.character_id), MediaType.POST_IMAGE
    )
    return Outcome.CREATED, confirmed


async def publish(state: DayState, unit: Unit) -> Step:
    """CreateAIPost on behalf of the post's author, once."""
    if unit.done:
        return Outcome.REUSED, unit
    value = draft_of(unit)

    async def call() -> str:
        created = await state.posts.create_ai_post(
            world_id=state.spec.id,
            character_id=str(unit.character_id),
            caption=value.caption,
            media_id=str(unit.media_id),
            tags=value.tags,
            idempotency_key=unit.key,
        )
        return created.post_id

    published = await create_remote(
        unit,
        "post",
        call,
        ledger=state.ledger,
        client=state.posts,
        honoured=state.honours_idempotency,
        log=state.period_work.log,
        claims=state.period_work.claims,
    )
    return Outcome.CREATED, published


async def make_day(
    state: DayState,
    character_units: dict[str, Unit],
    brief: WorldBrief,
    steps: Collection[str],
    width: int,
) -> None:
    """The selected ``stages`` of every post of the day, ``width`` posts in flight."""
    spec, ledger = state.spec, state.ledger
    authors, history = plan_authors(state, character_units)

    def finished(key: str) -> bool:
        unit = ledger.get(key)
        return unit is not None and unit.done

    async def one(slot: int) -> Outcome:
        key = state.keys[slot]
        if not await state.period_work.claims.acquire(key, finished=lambda: finished(key)):
            return Outcome.REUSED  # another run published it while we waited
        unit = ledger.get(key)
        if unit is None:  # pragma: no cover - planned above
            raise RuntimeError(f"{key} is not in the ledger")
        if DRAFT_STEP in steps:
            unit = await state.steps.run(
                DRAFT_STEP,
                key,
                write_draft(state, unit, character_units[authors[slot]], history, brief),
            )
        if not unit.reached(Stage.TEXT_DONE):
            return Outcome.REUSED  # not drafted and drafts not asked for: nothing to do
        if IMAGE_STEP in steps:
            unit = await state.steps.run(IMAGE_STEP, key, draw_image(state, unit))
        if POSTS in steps and unit.reached(Stage.CONFIRMED):
            await state.steps.run(POSTS, key, publish(state, unit))
        return Outcome.CREATED

    await fan_out(
        list(range(spec.posts_per_day)),
        lambda slot: state.keys[slot],
        one,
        limit=width,
        log=state.period_work.log,
        what="posts of the day",
    )
