"""WorldService of the local stack: catalog, paging, params and images."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from stack_helpers import StackApi, expect_status

from generia_pipelines.proto import media_pb2, world_pb2


async def _world(api: StackApi, name: str = "Bay", **fields: Any) -> world_pb2.WorldResponse:
    request = world_pb2.CreateWorldRequest(name=name, prompt=f"a world called {name}", **fields)
    return await api.world.CreateWorld(request)


async def test_create_and_get_world(api: StackApi) -> None:
    created = await _world(api, "Bay", description="sunny", user_id="u1")
    assert created.id and created.name == "Bay" and created.description == "sunny"
    assert created.creator_id == "u1" and created.status == "active"
    assert created.posts_count == 150 and not created.HasField("params")
    fetched = await api.world.GetWorld(world_pb2.GetWorldRequest(world_id=created.id))
    assert fetched == created


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "", "prompt": "p"},
        {"name": "n", "prompt": ""},
        {"name": "n", "prompt": "p", "characters_count": 41},
        {"name": "n", "prompt": "p", "posts_count": 251},
        {"name": "n", "prompt": "p", "posts_count": -1},
    ],
)
async def test_create_world_validation(api: StackApi, fields: dict[str, Any]) -> None:
    await expect_status(
        api.world.CreateWorld(world_pb2.CreateWorldRequest(**fields)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_get_unknown_world_is_not_found(api: StackApi) -> None:
    await expect_status(
        api.world.GetWorld(world_pb2.GetWorldRequest(world_id="missing")),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_get_worlds_pages_and_filters(api: StackApi) -> None:
    ids = [(await _world(api, f"W{i}")).id for i in range(5)]
    page = await api.world.GetWorlds(world_pb2.GetWorldsRequest(limit=2, offset=1))
    assert [w.id for w in page.worlds] == ids[1:3] and page.total == 5
    everything = await api.world.GetWorlds(world_pb2.GetWorldsRequest())
    assert [w.id for w in everything.worlds] == ids
    active = await api.world.GetWorlds(world_pb2.GetWorldsRequest(status="active"))
    archived = await api.world.GetWorlds(world_pb2.GetWorldsRequest(status="archived"))
    assert active.total == 5 and (archived.total, list(archived.worlds)) == (0, [])
    await expect_status(
        api.world.GetWorlds(world_pb2.GetWorldsRequest(limit=-1)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_update_world_params(api: StackApi) -> None:
    world = await _world(api)
    params = json.dumps({"tone": "warm", "style": "watercolour"})
    response = await api.world.UpdateWorldParams(
        world_pb2.UpdateWorldParamsRequest(world_id=world.id, params=params, posts_count=40)
    )
    assert response.success
    fetched = await api.world.GetWorld(world_pb2.GetWorldRequest(world_id=world.id))
    assert fetched.params == params and fetched.posts_count == 40 and fetched.name == "Bay"


async def test_update_world_params_validation(api: StackApi) -> None:
    world = await _world(api)
    await expect_status(
        api.world.UpdateWorldParams(
            world_pb2.UpdateWorldParamsRequest(world_id=world.id, params="{oops")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await expect_status(
        api.world.UpdateWorldParams(world_pb2.UpdateWorldParamsRequest(world_id="x", params="{}")),
        grpc.StatusCode.NOT_FOUND,
    )


async def _world_media(api: StackApi, world_id: str, *, confirm: bool = True) -> str:
    return await api.upload(
        "", world_id=world_id, media_type=media_pb2.MEDIA_TYPE_WORLD_HEADER, confirm=confirm
    )


async def test_update_world_image(api: StackApi) -> None:
    world = await _world(api)
    image = await _world_media(api, world.id)
    icon = await _world_media(api, world.id)
    response = await api.world.UpdateWorldImage(
        world_pb2.UpdateWorldImageRequest(world_id=world.id, image_uuid=image, icon_uuid=icon)
    )
    assert response.success
    fetched = await api.world.GetWorld(world_pb2.GetWorldRequest(world_id=world.id))
    assert image in fetched.image_url and icon in fetched.icon_url
    assert (await api.http.get(fetched.image_url)).status_code == 200


async def test_update_world_image_validation(api: StackApi) -> None:
    world = await _world(api)
    other = await _world(api, "Other")
    unconfirmed = await _world_media(api, world.id, confirm=False)
    foreign = await _world_media(api, other.id)
    cases = [
        ({"world_id": world.id}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"world_id": "missing", "image_uuid": foreign}, grpc.StatusCode.NOT_FOUND),
        ({"world_id": world.id, "image_uuid": "0" * 32}, grpc.StatusCode.NOT_FOUND),
        ({"world_id": world.id, "icon_uuid": foreign}, grpc.StatusCode.PERMISSION_DENIED),
        ({"world_id": world.id, "image_uuid": unconfirmed}, grpc.StatusCode.FAILED_PRECONDITION),
    ]
    for fields, code in cases:
        await expect_status(
            api.world.UpdateWorldImage(world_pb2.UpdateWorldImageRequest(**fields)), code
        )
