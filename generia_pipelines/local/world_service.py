"""WorldService of the local platform: the catalog of themed worlds.

Counts follow the platform: 25 characters and 150 posts by default, 1–40 and 1–250 allowed.
World images are media ids of the media store (read in-process), shown by their URL.
"""

from __future__ import annotations

from typing import Any

import grpc

from generia_pipelines.local.errors import (
    denied,
    invalid,
    not_found,
    precondition,
    require_json,
    require_text,
)
from generia_pipelines.local.stores import MediaStore, WorldRecord, WorldStore
from generia_pipelines.proto import world_pb2, world_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_CHARACTERS, MAX_CHARACTERS = 25, 40
DEFAULT_POSTS, MAX_POSTS = 150, 250
DEFAULT_PAGE, MAX_PAGE = 20, 100


def _count(value: int, field: str, default: int, maximum: int) -> int:
    if value == 0:
        return default
    if not 1 <= value <= maximum:
        raise invalid(f"{field} must be within 1..{maximum}, got {value}")
    return value


class WorldService(world_pb2_grpc.WorldServiceServicer):
    def __init__(self, *, worlds: WorldStore, media: MediaStore, public_url: str) -> None:
        self._worlds = worlds
        self._media = media
        self._public_url = public_url

    def _media_url(self, media_id: str | None) -> str:
        media = self._media.get(media_id) if media_id else None
        original = (
            next((v for v in media.variants if v.name == "original"), None) if media else None
        )
        return f"{self._public_url}/media/{original.key}" if original else ""

    def world_message(self, record: WorldRecord) -> world_pb2.WorldResponse:
        message = world_pb2.WorldResponse(
            id=record.id,
            name=record.name,
            description=record.description,
            prompt=record.prompt,
            creator_id=record.creator_id,
            generation_status=record.generation_status,
            status=record.status,
            users_count=record.users_count,
            posts_count=record.posts_count,
            created_at=record.created_at,
            updated_at=record.updated_at,
            is_joined=False,
            image_url=self._media_url(record.image_media_id),
            icon_url=self._media_url(record.icon_media_id),
        )
        if record.params is not None:
            message.params = record.params
        return message

    def _existing(self, world_id: str) -> WorldRecord:
        record = self._worlds.get(require_text(world_id, "world_id"))
        if record is None:
            raise not_found(f"world {world_id} not found")
        return record

    async def CreateWorld(
        self, request: world_pb2.CreateWorldRequest, context: Context
    ) -> world_pb2.WorldResponse:
        record = self._worlds.create(
            name=require_text(request.name, "name"),
            description=request.description,
            prompt=require_text(request.prompt, "prompt"),
            creator_id=request.user_id,
            characters_count=_count(
                request.characters_count, "characters_count", DEFAULT_CHARACTERS, MAX_CHARACTERS
            ),
            posts_count=_count(request.posts_count, "posts_count", DEFAULT_POSTS, MAX_POSTS),
        )
        return self.world_message(record)

    async def GetWorld(
        self, request: world_pb2.GetWorldRequest, context: Context
    ) -> world_pb2.WorldResponse:
        return self.world_message(self._existing(request.world_id))

    async def GetWorlds(
        self, request: world_pb2.GetWorldsRequest, context: Context
    ) -> world_pb2.WorldsResponse:
        if request.limit < 0 or request.offset < 0:
            raise invalid("limit and offset must be >= 0")
        limit = min(request.limit or DEFAULT_PAGE, MAX_PAGE)
        records, total = self._worlds.page(
            limit=limit, offset=request.offset, status=request.status.strip()
        )
        return world_pb2.WorldsResponse(
            worlds=[self.world_message(r) for r in records], total=total
        )

    async def UpdateWorldParams(
        self, request: world_pb2.UpdateWorldParamsRequest, context: Context
    ) -> world_pb2.UpdateWorldParamsResponse:
        record = self._existing(request.world_id)
        params = require_json(request.params, "params") if request.params else None
        if request.users_count < 0 or request.posts_count < 0:
            raise invalid("users_count and posts_count must be >= 0")
        self._worlds.update_params(
            record.id,
            params=params,
            name=request.name.strip() or None,
            users_count=request.users_count or None,
            posts_count=request.posts_count or None,
        )
        return world_pb2.UpdateWorldParamsResponse(success=True, message="world params updated")

    async def UpdateWorldImage(
        self, request: world_pb2.UpdateWorldImageRequest, context: Context
    ) -> world_pb2.UpdateWorldImageResponse:
        record = self._existing(request.world_id)
        image_id, icon_id = request.image_uuid.strip(), request.icon_uuid.strip()
        if not image_id and not icon_id:
            raise invalid("image_uuid or icon_uuid is required")
        for media_id in filter(None, (image_id, icon_id)):
            media = self._media.get(media_id)
            if media is None:
                raise not_found(f"media {media_id} not found")
            if media.world_id != record.id:
                raise denied(f"media {media_id} does not belong to world {record.id}")
            if not media.confirmed:
                raise precondition(f"media {media_id} is not confirmed; call ConfirmUpload first")
        self._worlds.update_images(
            record.id, image_media_id=image_id or None, icon_media_id=icon_id or None
        )
        return world_pb2.UpdateWorldImageResponse(success=True, message="world image updated")

    async def HealthCheck(
        self, request: world_pb2.HealthCheckRequest, context: Context
    ) -> world_pb2.HealthCheckResponse:
        return world_pb2.HealthCheckResponse(status="SERVING")
