"""Test helpers over the raw generated stubs: channels to a stack and the upload flow.

The tests speak to the stack as any external client would (real sockets, grpc.aio, httpx),
so these helpers deliberately avoid the project's own client classes.
"""

from __future__ import annotations

import io
import ssl
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from PIL import Image

from generia_pipelines.local.stack import ThreadedStack
from generia_pipelines.proto import (
    character_pb2,
    character_pb2_grpc,
    media_pb2,
    media_pb2_grpc,
    post_pb2,
    post_pb2_grpc,
    world_pb2_grpc,
)

WORLD = "world-1"
# Loading the CA bundle costs ~60 ms per client; every test's client shares this one.
_TLS = ssl.create_default_context()


def image_bytes(width: int = 320, height: int = 240, fmt: str = "PNG") -> bytes:
    """A real image of the given size and format, with some structure to compress."""
    image = Image.new("RGB", (width, height), (30, 60, 90))
    for x in range(0, width, 16):
        for y in range(0, height, 16):
            image.putpixel((x, y), (250, 200, 10))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def key_md(key: str) -> Sequence[tuple[str, str]]:
    return (("idempotency-key", key),)


async def expect_status(awaitable: Any, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """Await a call that must fail with ``code``; return the error for further checks."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    assert info.value.code() == code, info.value.details()
    return info.value


@dataclass
class StackApi:
    """Async stubs of the four services plus an HTTP client, bound to one stack."""

    stack: ThreadedStack
    character: Any
    media: Any
    post: Any
    world: Any
    http: httpx.AsyncClient

    @property
    def base(self) -> str:
        return self.stack.env["GENERIA_STACK_URL"]

    async def admin(self, world_id: str, what: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.base}/_admin/worlds/{world_id}/{what}")
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    async def stats(self, method: str) -> dict[str, int]:
        response = await self.http.get(f"{self.base}/_admin/stats")
        response.raise_for_status()
        methods: dict[str, dict[str, int]] = response.json()["methods"]
        return methods.get(method, {})

    async def create_character(
        self, world_id: str = WORLD, name: str = "Ada", **fields: Any
    ) -> character_pb2.Character:
        request = character_pb2.CreateCharacterRequest(
            world_id=world_id, display_name=name, **fields
        )
        return await self.character.CreateCharacter(request)

    async def presign(
        self,
        character_id: str,
        data: bytes,
        *,
        world_id: str = WORLD,
        content_type: str = "image/png",
        media_type: int = media_pb2.MEDIA_TYPE_POST_IMAGE,
    ) -> media_pb2.GetPresignedUploadURLResponse:
        return await self.media.GetPresignedUploadURL(
            media_pb2.GetPresignedUploadURLRequest(
                character_id=character_id,
                world_id=world_id,
                filename="image.png",
                content_type=content_type,
                size=len(data),
                media_type=media_type,  # type: ignore[arg-type]
            )
        )

    async def put(self, url: str, data: bytes, content_type: str = "image/png") -> httpx.Response:
        return await self.http.put(url, content=data, headers={"Content-Type": content_type})

    async def upload(
        self,
        character_id: str,
        data: bytes | None = None,
        *,
        world_id: str = WORLD,
        media_type: int = media_pb2.MEDIA_TYPE_POST_IMAGE,
        confirm: bool = True,
    ) -> str:
        """Presign, PUT and (by default) confirm an image; returns the media id."""
        data = data if data is not None else image_bytes()
        presigned = await self.presign(character_id, data, world_id=world_id, media_type=media_type)
        response = await self.put(presigned.upload_url, data)
        assert response.status_code == 200, response.text
        if confirm:
            await self.media.ConfirmUpload(
                media_pb2.ConfirmUploadRequest(
                    media_id=presigned.media_id, character_id=character_id
                )
            )
        return presigned.media_id

    async def create_post(
        self, character_id: str, media_id: str, world_id: str = WORLD, **fields: Any
    ) -> post_pb2.CreatePostResponse:
        request = post_pb2.CreateAIPostRequest(
            character_id=character_id, media_id=media_id, world_id=world_id, **fields
        )
        return await self.post.CreateAIPost(request)


async def open_api(
    stack: ThreadedStack, exits: AsyncExitStack, token: str | None = None
) -> StackApi:
    """Channels to every service of ``stack`` (closed by ``exits``)."""
    env = stack.env
    interceptors: list[Any] = [] if token is None else [_BearerInterceptor(token)]

    async def channel(var: str) -> grpc.aio.Channel:
        chan = grpc.aio.insecure_channel(env[var], interceptors=interceptors)
        return await exits.enter_async_context(chan)

    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    http = await exits.enter_async_context(
        httpx.AsyncClient(timeout=10.0, headers=headers, verify=_TLS)
    )
    return StackApi(
        stack=stack,
        character=character_pb2_grpc.CharacterServiceStub(await channel("GENERIA_CHARACTER_ADDR")),
        media=media_pb2_grpc.MediaServiceStub(await channel("GENERIA_MEDIA_ADDR")),
        post=post_pb2_grpc.PostServiceStub(await channel("GENERIA_POST_ADDR")),
        world=world_pb2_grpc.WorldServiceStub(await channel("GENERIA_WORLD_ADDR")),
        http=http,
    )


class _BearerInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds ``authorization: Bearer`` to every call, keeping any metadata already given."""

    def __init__(self, token: str) -> None:
        self._entry = ("authorization", f"Bearer {token}")

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self._entry)
        new_details = grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )
        return await continuation(new_details, request)
