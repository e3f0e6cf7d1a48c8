"""Token enforcement: with a token, every RPC and admin endpoint wants ``Bearer <token>``."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import grpc
import httpx
from stack_helpers import expect_status, open_api

from generia_pipelines.proto import character_pb2, media_pb2, post_pb2, world_pb2

TOKEN = "s3cret-token-value"


async def test_every_rpc_requires_the_bearer_token(stack_factory: Any) -> None:
    stack = stack_factory(token=TOKEN)
    assert stack.env["GENERIA_GRPC_TOKEN"] == TOKEN
    async with AsyncExitStack() as exits:
        anonymous = await open_api(stack, exits)
        wrong = await open_api(stack, exits, token="not-it")
        authorized = await open_api(stack, exits, token=TOKEN)
        for api in (anonymous, wrong):
            calls = [
                api.character.HealthCheck(character_pb2.HealthCheckRequest()),
                api.media.HealthCheck(media_pb2.HealthCheckRequest()),
                api.post.HealthCheck(post_pb2.HealthCheckRequest()),
                api.world.HealthCheck(world_pb2.HealthCheckRequest()),
                api.create_character(),
                api.world.GetWorlds(world_pb2.GetWorldsRequest()),
            ]
            for call in calls:
                error = await expect_status(call, grpc.StatusCode.UNAUTHENTICATED)
                assert TOKEN not in (error.details() or "")
                assert "not-it" not in (error.details() or "")
        created = await authorized.create_character()
        assert created.is_ai
        assert len(await authorized.admin("world-1", "characters")) == 1


async def test_token_must_be_exact(stack_factory: Any) -> None:
    stack = stack_factory(token=TOKEN)
    async with AsyncExitStack() as exits:
        api = await open_api(stack, exits)
        for value in (TOKEN, f"Bearer {TOKEN}x", f"bearer  {TOKEN}", f"Basic {TOKEN}"):
            await expect_status(
                api.character.HealthCheck(
                    character_pb2.HealthCheckRequest(), metadata=(("authorization", value),)
                ),
                grpc.StatusCode.UNAUTHENTICATED,
            )


async def test_admin_endpoints_require_the_token(stack_factory: Any) -> None:
    stack = stack_factory(token=TOKEN)
    base = stack.env["GENERIA_STACK_URL"]
    async with httpx.AsyncClient(timeout=5) as http:
        for path in ("/_admin/stats", "/_admin/worlds/w/characters", "/_control/faults"):
            assert (await http.get(base + path)).status_code == 401
            ok = await http.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200
        refused = await http.post(base + "/_control/faults", json={"expire_urls_early": True})
        assert refused.status_code == 401 and TOKEN not in refused.text
        assert stack.faults.snapshot()["expire_urls_early"] is False


async def test_without_a_token_no_auth_is_needed(stack_factory: Any) -> None:
    stack = stack_factory()
    assert "GENERIA_GRPC_TOKEN" not in stack.env
    async with AsyncExitStack() as exits:
        api = await open_api(stack, exits, token="anything")
        assert (await api.world.HealthCheck(world_pb2.HealthCheckRequest())).status == "SERVING"
