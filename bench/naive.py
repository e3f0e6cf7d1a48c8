"""The naive baseline: a world populated one item after another, as the original service did.

No Dagster, no ledger, no fan-out: the same prompts, text backend, Runware client and
platform clients as the pipeline, but each call waits for the one before it, the way the
original worker's four jobs ran (generate, create, generate image, presign, upload, confirm,
post, in sequence). Timed per item so that a sample can stand for a larger workload.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from generia_pipelines.catalog import WorldSpec
from generia_pipelines.clients.grpc_base import ChannelSettings
from generia_pipelines.clients.platform import CharacterClient, MediaClient, PostClient
from generia_pipelines.clients.records import MediaType
from generia_pipelines.clients.runware import RunwareImages
from generia_pipelines.clients.text.base import BoundedTextGenerator, TextTask
from generia_pipelines.clients.text.factory import TextSettings, create_text_generator
from generia_pipelines.clients.upload import PresignedUploader
from generia_pipelines.generation.planning import plan_character_batches
from generia_pipelines.generation.prompts import (
    render_avatar_prompt,
    render_character_batch,
    render_character_detail,
    render_post_draft,
    render_world_brief,
)
from generia_pipelines.generation.schemas import (
    AvatarPrompt,
    CharacterBatchPlan,
    CharacterProfile,
    PostDraft,
    WorldBrief,
)
from generia_pipelines.resources.runware import RunwareResource


@dataclass(frozen=True)
class NaiveTimes:
    """Measured seconds: the world's brief and plans, per character (with avatar), per post."""

    characters: int
    posts: int
    setup_s: float
    per_character_s: float
    per_post_s: float

    @property
    def total_s(self) -> float:
        return self.setup_s + self.characters * self.per_character_s + self.posts * self.per_post_s


def _channel(variable: str) -> ChannelSettings:
    return ChannelSettings(address=os.environ[variable], address_variable=variable)


async def populate_naively(
    world: WorldSpec, day: date, *, image_size: int = 512, http_timeout_s: float = 60.0
) -> NaiveTimes:
    """Populate ``world`` (its characters, avatars, and one day of posts) call by call."""
    import httpx

    text: BoundedTextGenerator = create_text_generator(
        TextSettings(
            backend=os.environ.get("GENERIA_TEXT_BACKEND", "local"),
            base_url=os.environ.get("GENERIA_TEXT_BASE_URL"),
            api_key=os.environ.get("GENERIA_TEXT_API_KEY"),
            model=os.environ.get("GENERIA_TEXT_MODEL"),
            max_concurrency=1,
        )
    )
    runware_settings = RunwareResource(
        api_key=os.environ["RUNWARE_API_KEY"],
        url=os.environ["RUNWARE_URL"],
        width=image_size,
        height=image_size,
        concurrency=1,
    ).settings()
    async with (
        text,
        RunwareImages(runware_settings) as runware,
        CharacterClient(_channel("GENERIA_CHARACTER_ADDR")) as characters,
        MediaClient(_channel("GENERIA_MEDIA_ADDR")) as media,
        PostClient(_channel("GENERIA_POST_ADDR")) as posts,
        httpx.AsyncClient(timeout=http_timeout_s) as http,
    ):
        uploader = PresignedUploader(media, http)

        async def ask(schema: type, prompt: object, key: str) -> object:
            task: Any = TextTask(schema, prompt, world.id, key)  # type: ignore[arg-type]
            result: Any = await text.generate(task)
            return result.value

        async def picture(prompt: str, seed: int, owner: str, kind: MediaType, key: str) -> str:
            image = await runware.generate(prompt, seed=seed)
            uploaded = await uploader.upload(
                world_id=world.id,
                character_id=owner,
                media_type=kind,
                filename=f"{key.replace('/', '_')}{image.extension}",
                content_type=image.content_type,
                data=image.data,
                idempotency_key=f"{key}/presign",
            )
            await media.confirm(
                uploaded.media_id, owner, world_id=world.id, idempotency_key=f"{key}/confirm"
            )
            return uploaded.media_id

        start = time.perf_counter()
        brief = await ask(WorldBrief, render_world_brief(world), f"naive/{world.id}/brief")
        assert isinstance(brief, WorldBrief)
        concepts: list[Any] = []
        for batch in plan_character_batches(world.characters):
            plan = await ask(
                CharacterBatchPlan,
                render_character_batch(world, brief, len(batch), concepts),
                f"naive/{world.id}/plan{batch[0]}",
            )
            assert isinstance(plan, CharacterBatchPlan)
            concepts.extend(plan.characters[: len(batch)])
        setup_s = time.perf_counter() - start

        start = time.perf_counter()
        people: list[tuple[str, CharacterProfile]] = []
        for slot, concept in enumerate(concepts):
            key = f"naive/{world.id}/character{slot}"
            profile = await ask(
                CharacterProfile, render_character_detail(world, brief, concept), key
            )
            assert isinstance(profile, CharacterProfile)
            made = await characters.create_ai_character(
                world.id, profile.display_name, meta={"bio": profile.bio}, idempotency_key=key
            )
            avatar = await ask(AvatarPrompt, render_avatar_prompt(world, brief, profile), key)
            assert isinstance(avatar, AvatarPrompt)
            media_id = await picture(
                avatar.prompt, slot + 1, made.id, MediaType.CHARACTER_AVATAR, key
            )
            await characters.update_character(
                made.id, avatar_media_id=media_id, world_id=world.id, idempotency_key=f"{key}/a"
            )
            people.append((made.id, profile))
        per_character_s = (time.perf_counter() - start) / max(1, len(people))

        start = time.perf_counter()
        for slot in range(world.posts_per_day):
            key = f"naive/{world.id}/{day.isoformat()}/post{slot}"
            author, profile = people[slot % len(people)]
            draft = await ask(PostDraft, render_post_draft(world, brief, profile, (), day), key)
            assert isinstance(draft, PostDraft)
            media_id = await picture(
                draft.image_prompt, slot + 1, author, MediaType.POST_IMAGE, key
            )
            await posts.create_ai_post(
                world_id=world.id,
                character_id=author,
                caption=draft.caption,
                media_id=media_id,
                tags=draft.tags,
                idempotency_key=key,
            )
        per_post_s = (time.perf_counter() - start) / max(1, world.posts_per_day)
    return NaiveTimes(len(people), world.posts_per_day, setup_s, per_character_s, per_post_s)
