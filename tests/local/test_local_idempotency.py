"""``idempotency-key`` on every mutating call: replay the first result, refuse key reuse."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import grpc
import pytest
from stack_helpers import WORLD, StackApi, expect_status, image_bytes, key_md, open_api

from generia_pipelines.proto import character_pb2, media_pb2, post_pb2, world_pb2

Call = Callable[[StackApi, dict[str, Any], str], Awaitable[Any]]


async def _character_world(api: StackApi) -> dict[str, Any]:
    ada = await api.create_character()
    world = await api.world.CreateWorld(world_pb2.CreateWorldRequest(name="Bay", prompt="p"))
    return {"ada": ada, "world": world}


# One (call, changed-request) pair per mutating method: call(api, ctx, key) with the same
# request each time, and a variant that differs, to check the key cannot be reused for it.
async def _create_character(
    api: StackApi, ctx: dict[str, Any], key: str, *, alt: bool = False
) -> Any:
    request = character_pb2.CreateCharacterRequest(world_id=WORLD, display_name="B" if alt else "A")
    return await api.character.CreateCharacter(request, metadata=key_md(key))


async def _update_character(
    api: StackApi, ctx: dict[str, Any], key: str, *, alt: bool = False
) -> Any:
    request = character_pb2.UpdateCharacterRequest(
        character_id=ctx["ada"].id, display_name="Y" if alt else "X"
    )
    return await api.character.UpdateCharacter(request, metadata=key_md(key))


async def _presign(api: StackApi, ctx: dict[str, Any], key: str, *, alt: bool = False) -> Any:
    request = media_pb2.GetPresignedUploadURLRequest(
        character_id=ctx["ada"].id,
        world_id=WORLD,
        filename="a.png",
        content_type="image/png",
        size=200 if alt else 100,
        media_type=media_pb2.MEDIA_TYPE_POST_IMAGE,
    )
    return await api.media.GetPresignedUploadURL(request, metadata=key_md(key))


async def _confirm(api: StackApi, ctx: dict[str, Any], key: str, *, alt: bool = False) -> Any:
    if "media" not in ctx:
        ctx["media"] = await api.upload(ctx["ada"].id, confirm=False)
        ctx["media2"] = await api.upload(ctx["ada"].id, confirm=False)
    media_id = ctx["media2"] if alt else ctx["media"]
    request = media_pb2.ConfirmUploadRequest(media_id=media_id, character_id=ctx["ada"].id)
    return await api.media.ConfirmUpload(request, metadata=key_md(key))


async def _create_post(api: StackApi, ctx: dict[str, Any], key: str, *, alt: bool = False) -> Any:
    if "media" not in ctx:
        ctx["media"] = await api.upload(ctx["ada"].id)
    request = post_pb2.CreateAIPostRequest(
        character_id=ctx["ada"].id,
        media_id=ctx["media"],
        world_id=WORLD,
        caption="other" if alt else "hello",
    )
    return await api.post.CreateAIPost(request, metadata=key_md(key))


async def _create_world(api: StackApi, ctx: dict[str, Any], key: str, *, alt: bool = False) -> Any:
    request = world_pb2.CreateWorldRequest(name="Z" if alt else "New", prompt="p")
    return await api.world.CreateWorld(request, metadata=key_md(key))


async def _update_params(api: StackApi, ctx: dict[str, Any], key: str, *, alt: bool = False) -> Any:
    request = world_pb2.UpdateWorldParamsRequest(
        world_id=ctx["world"].id, params='{"v": 2}' if alt else '{"v": 1}'
    )
    return await api.world.UpdateWorldParams(request, metadata=key_md(key))


async def _update_image(api: StackApi, ctx: dict[str, Any], key: str, *, alt: bool = False) -> Any:
    if "header" not in ctx:
        ctx["header"] = await api.upload(
            "", world_id=ctx["world"].id, media_type=media_pb2.MEDIA_TYPE_WORLD_HEADER
        )
    request = world_pb2.UpdateWorldImageRequest(
        world_id=ctx["world"].id,
        image_uuid="" if alt else ctx["header"],
        icon_uuid=ctx["header"] if alt else "",
    )
    return await api.world.UpdateWorldImage(request, metadata=key_md(key))


CALLS = {
    "character.CreateCharacter": _create_character,
    "character.UpdateCharacter": _update_character,
    "media.GetPresignedUploadURL": _presign,
    "media.ConfirmUpload": _confirm,
    "post.CreateAIPost": _create_post,
    "world.CreateWorld": _create_world,
    "world.UpdateWorldParams": _update_params,
    "world.UpdateWorldImage": _update_image,
}


@pytest.mark.parametrize("method", sorted(CALLS))
async def test_replay_returns_the_first_response_without_a_second_effect(
    api: StackApi, method: str
) -> None:
    call = CALLS[method]
    ctx = await _character_world(api)
    api.stack.stats.reset()
    first = await call(api, ctx, "key-1")
    replay = await call(api, ctx, "key-1")
    assert replay == first
    stats = await api.stats(method)
    assert stats["calls"] == 2 and stats["replays"] == 1
    reused = await expect_status(
        call(api, ctx, "key-1", alt=True), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "idempotency-key" in (reused.details() or "") and "key-1" in (reused.details() or "")


async def test_replayed_creates_leave_one_row(api: StackApi) -> None:
    ctx = await _character_world(api)
    for _ in range(3):
        await _create_character(api, ctx, "c")
        await _presign(api, ctx, "m")
        await _create_post(api, ctx, "p")
        await _create_world(api, ctx, "w")
    characters = await api.admin(WORLD, "characters")
    assert [c["display_name"] for c in characters] == ["Ada", "A"]
    # ctx["media"] for the post plus the single presigned one
    assert len(await api.admin(WORLD, "media")) == 2
    assert len(await api.admin(WORLD, "posts")) == 1
    worlds = await api.world.GetWorlds(world_pb2.GetWorldsRequest())
    assert worlds.total == 2


async def test_update_replay_does_not_undo_a_later_change(api: StackApi) -> None:
    ctx = await _character_world(api)
    await _update_character(api, ctx, "u1")  # X
    await _update_character(api, ctx, "u2", alt=True)  # Y
    replay = await _update_character(api, ctx, "u1")
    assert replay.display_name == "X"  # the stored first answer...
    fetched = await api.character.GetCharacter(
        character_pb2.GetCharacterRequest(character_id=ctx["ada"].id)
    )
    assert fetched.display_name == "Y"  # ...but no second effect


async def test_keys_are_scoped_per_method(api: StackApi) -> None:
    ctx = await _character_world(api)
    await _create_character(api, ctx, "shared")
    await _create_world(api, ctx, "shared")
    await _presign(api, ctx, "shared")


async def test_concurrent_calls_with_one_key_create_once(api: StackApi) -> None:
    ctx = await _character_world(api)
    results = await asyncio.gather(*(_create_character(api, ctx, "same") for _ in range(10)))
    assert len({r.id for r in results}) == 1
    assert len(await api.admin(WORLD, "characters")) == 2  # Ada + one


async def test_calls_without_a_key_are_not_deduplicated(api: StackApi) -> None:
    for _ in range(2):
        await api.character.CreateCharacter(
            character_pb2.CreateCharacterRequest(world_id=WORLD, display_name="A")
        )
    assert len(await api.admin(WORLD, "characters")) == 2


async def test_reads_ignore_the_key(api: StackApi) -> None:
    ada = await api.create_character()
    request = character_pb2.GetCharacterRequest(character_id=ada.id)
    await api.character.GetCharacter(request, metadata=key_md("k"))
    other = await api.create_character(name="Other")
    request = character_pb2.GetCharacterRequest(character_id=other.id)
    assert (await api.character.GetCharacter(request, metadata=key_md("k"))).id == other.id


async def test_stack_can_ignore_keys(stack_factory: Any) -> None:
    stack = stack_factory(honour_idempotency=False)
    async with AsyncExitStack() as exits:
        api = await open_api(stack, exits)
        first = await _create_character(api, {}, "k")
        second = await _create_character(api, {}, "k", alt=True)
        assert first.id != second.id
        assert len(await api.admin(WORLD, "characters")) == 2


async def test_stored_responses_survive_a_restart(stack_factory: Any) -> None:
    stack = stack_factory()
    config = stack.config
    async with AsyncExitStack() as exits:
        first = await _create_character(await open_api(stack, exits), {}, "k")
    stack.stop()
    restarted = stack_factory(replace(config))
    async with AsyncExitStack() as exits:
        api = await open_api(restarted, exits)
        assert await _create_character(api, {}, "k") == first
        assert len(await api.admin(WORLD, "characters")) == 1


async def test_overlong_key_is_refused(api: StackApi) -> None:
    await expect_status(_create_character(api, {}, "k" * 513), grpc.StatusCode.INVALID_ARGUMENT)


async def test_upload_after_replayed_presign_uses_the_same_url(api: StackApi) -> None:
    ada = await api.create_character()
    data = image_bytes()
    request = media_pb2.GetPresignedUploadURLRequest(
        character_id=ada.id, world_id=WORLD, filename="a.png", content_type="image/png",
        size=len(data), media_type=media_pb2.MEDIA_TYPE_POST_IMAGE,
    )  # fmt: skip
    first = await api.media.GetPresignedUploadURL(request, metadata=key_md("img"))
    replay = await api.media.GetPresignedUploadURL(request, metadata=key_md("img"))
    assert replay.upload_url == first.upload_url
    assert (await api.put(replay.upload_url, data)).status_code == 200
