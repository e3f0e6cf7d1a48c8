"""PostService of the local stack: CreateAIPost's ownership rules and validation, GetPost."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from stack_helpers import WORLD, StackApi, expect_status

from generia_pipelines.proto import post_pb2


async def test_create_ai_post_and_get_it(api: StackApi) -> None:
    ada = await api.create_character(name="Ada")
    media_id = await api.upload(ada.id)
    created = await api.create_post(ada.id, media_id, caption="Dawn over the bay", tags=["sea"])
    assert created.post_id and created.created_at.endswith("Z")
    post = await api.post.GetPost(post_pb2.GetPostRequest(post_id=created.post_id))
    assert (post.post_id, post.character_id, post.world_id) == (created.post_id, ada.id, WORLD)
    assert (post.caption, list(post.tags), post.media_id) == (
        "Dawn over the bay",
        ["sea"],
        media_id,
    )
    assert post.display_name == "Ada" and post.is_ai and post.created_at == created.created_at
    assert (await api.http.get(post.media_url)).status_code == 200
    [listed] = await api.admin(WORLD, "posts")
    assert listed["post_id"] == created.post_id and listed["media_url"] == post.media_url


async def test_limits_are_inclusive(api: StackApi) -> None:
    ada = await api.create_character()
    media_id = await api.upload(ada.id)
    tags = [f"t{i}" for i in range(29)] + ["x" * 64]
    await api.create_post(ada.id, media_id, caption="c" * 2200, tags=tags)


@pytest.mark.parametrize(
    "change",
    [
        {"character_id": ""},
        {"media_id": ""},
        {"world_id": ""},
        {"caption": "c" * 2201},
        {"tags": [f"t{i}" for i in range(31)]},
        {"tags": ["ok", ""]},
        {"tags": ["  "]},
        {"tags": ["x" * 65]},
    ],
)
async def test_create_ai_post_validation(api: StackApi, change: dict[str, Any]) -> None:
    ada = await api.create_character()
    media_id = await api.upload(ada.id)
    fields: dict[str, Any] = {
        "character_id": ada.id,
        "media_id": media_id,
        "world_id": WORLD,
        "caption": "hello",
    }
    fields.update(change)
    await expect_status(
        api.post.CreateAIPost(post_pb2.CreateAIPostRequest(**fields)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert await api.admin(WORLD, "posts") == []


async def test_unknown_character_is_not_found(api: StackApi) -> None:
    ada = await api.create_character()
    media_id = await api.upload(ada.id)
    await expect_status(api.create_post("missing", media_id), grpc.StatusCode.NOT_FOUND)


async def test_unknown_media_is_not_found(api: StackApi) -> None:
    ada = await api.create_character()
    await expect_status(api.create_post(ada.id, "0" * 32), grpc.StatusCode.NOT_FOUND)


async def test_human_character_cannot_post_through_the_ai_method(api: StackApi) -> None:
    human = await api.create_character(name="Bob", real_user_id="user-1")
    media_id = await api.upload(human.id)
    await expect_status(api.create_post(human.id, media_id), grpc.StatusCode.PERMISSION_DENIED)


async def test_character_of_another_world_is_denied(api: StackApi) -> None:
    ada = await api.create_character()
    media_id = await api.upload(ada.id)
    await expect_status(
        api.create_post(ada.id, media_id, world_id="other-world"),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_media_of_another_character_is_denied(api: StackApi) -> None:
    ada = await api.create_character(name="Ada")
    bob = await api.create_character(name="Bob")
    bobs_media = await api.upload(bob.id)
    await expect_status(api.create_post(ada.id, bobs_media), grpc.StatusCode.PERMISSION_DENIED)


async def test_unconfirmed_media_fails_precondition(api: StackApi) -> None:
    ada = await api.create_character()
    media_id = await api.upload(ada.id, confirm=False)
    await expect_status(api.create_post(ada.id, media_id), grpc.StatusCode.FAILED_PRECONDITION)
    assert await api.admin(WORLD, "posts") == []


async def test_get_unknown_post_is_not_found(api: StackApi) -> None:
    await expect_status(
        api.post.GetPost(post_pb2.GetPostRequest(post_id="missing")), grpc.StatusCode.NOT_FOUND
    )
