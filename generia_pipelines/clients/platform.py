"""Typed async clients of the four Generia services (Character, Media, Post, World).

They translate between protobuf and the records in ``records.py``; every create call takes
the caller's idempotency key, because only the caller knows which unit of work it is.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from generia_pipelines.clients.grpc_base import GrpcClient
from generia_pipelines.clients.records import (
    Character,
    ConfirmedUpload,
    CreatedPost,
    Media,
    MediaType,
    MediaVariant,
    Post,
    PresignedUpload,
    World,
    WorldPage,
)
from generia_pipelines.proto import (
    character_pb2,
    character_pb2_grpc,
    media_pb2,
    media_pb2_grpc,
    post_pb2,
    post_pb2_grpc,
    world_pb2,
    world_pb2_grpc,
)


def _opt(message: Any, name: str) -> str | None:
    return getattr(message, name) if message.HasField(name) else None


def _character(msg: character_pb2.Character) -> Character:
    return Character(
        id=msg.id,
        world_id=msg.world_id,
        display_name=msg.display_name,
        is_ai=msg.is_ai,
        real_user_id=_opt(msg, "real_user_id"),
        avatar_media_id=_opt(msg, "avatar_media_id"),
        meta=_opt(msg, "meta"),
        created_at=msg.created_at,
    )


def _variants(items: Any) -> tuple[MediaVariant, ...]:
    return tuple(MediaVariant(v.name, v.url, v.width, v.height) for v in items)


def _world(msg: world_pb2.WorldResponse) -> World:
    return World(
        id=msg.id,
        name=msg.name,
        description=msg.description,
        prompt=msg.prompt,
        users_count=msg.users_count,
        posts_count=msg.posts_count,
        status=msg.status,
        generation_status=msg.generation_status,
        params=_opt(msg, "params"),
        image_url=msg.image_url,
        icon_url=msg.icon_url,
        created_at=msg.created_at,
        updated_at=msg.updated_at,
    )


class CharacterClient(GrpcClient):
    service = "CharacterService"
    descriptor = character_pb2.DESCRIPTOR.services_by_name["CharacterService"]

    def _bind(self, channel: grpc.aio.Channel) -> None:
        self._stub = character_pb2_grpc.CharacterServiceStub(channel)

    async def create_ai_character(
        self,
        world_id: str,
        display_name: str,
        *,
        idempotency_key: str,
        meta: dict[str, Any] | str | None = None,
        avatar_media_id: str | None = None,
    ) -> Character:
        """Create an AI character (no ``real_user_id``); the key makes a retry harmless."""
        request = character_pb2.CreateCharacterRequest(world_id=world_id, display_name=display_name)
        if meta is not None:
            request.meta = meta if isinstance(meta, str) else json.dumps(meta, ensure_ascii=False)
        if avatar_media_id is not None:
            request.avatar_media_id = avatar_media_id
        msg = await self._call(
            "CreateCharacter",
            self._stub.CreateCharacter,
            request,
            world_id=world_id,
            idempotency_key=idempotency_key,
        )
        return _character(msg)

    async def get_character(self, character_id: str, *, world_id: str | None = None) -> Character:
        request = character_pb2.GetCharacterRequest(character_id=character_id)
        msg = await self._call("GetCharacter", self._stub.GetCharacter, request, world_id=world_id)
        return _character(msg)

    async def user_characters(self, user_id: str, world_id: str) -> list[Character]:
        request = character_pb2.GetUserCharactersInWorldRequest(user_id=user_id, world_id=world_id)
        msg = await self._call(
            "GetUserCharactersInWorld",
            self._stub.GetUserCharactersInWorld,
            request,
            world_id=world_id,
        )
        return [_character(c) for c in msg.characters]

    async def update_character(
        self,
        character_id: str,
        *,
        idempotency_key: str,
        world_id: str | None = None,
        display_name: str | None = None,
        avatar_media_id: str | None = None,
        avatar_url: str | None = None,
        meta: str | None = None,
    ) -> Character:
        """Change only the fields given (they are ``optional`` on the wire)."""
        request = character_pb2.UpdateCharacterRequest(character_id=character_id)
        for name, value in (
            ("display_name", display_name),
            ("avatar_media_id", avatar_media_id),
            ("avatar_url", avatar_url),
            ("meta", meta),
        ):
            if value is not None:
                setattr(request, name, value)
        msg = await self._call(
            "UpdateCharacter",
            self._stub.UpdateCharacter,
            request,
            world_id=world_id,
            idempotency_key=idempotency_key,
        )
        return _character(msg)

    async def health(self) -> str:
        return await self._health(self._stub.HealthCheck, character_pb2.HealthCheckRequest())


class MediaClient(GrpcClient):
    service = "MediaService"
    descriptor = media_pb2.DESCRIPTOR.services_by_name["MediaService"]

    def _bind(self, channel: grpc.aio.Channel) -> None:
        self._stub = media_pb2_grpc.MediaServiceStub(channel)

    async def presign(
        self,
        *,
        world_id: str,
        character_id: str,
        filename: str,
        content_type: str,
        size: int,
        media_type: MediaType,
        idempotency_key: str,
    ) -> PresignedUpload:
        """Reserve a media id and a presigned PUT URL for exactly these bytes."""
        request = media_pb2.GetPresignedUploadURLRequest(
            character_id=character_id,
            world_id=world_id,
            filename=filename,
            content_type=content_type,
            size=size,
            media_type=int(media_type),  # type: ignore[arg-type]
        )
        msg = await self._call(
            "GetPresignedUploadURL",
            self._stub.GetPresignedUploadURL,
            request,
            world_id=world_id,
            idempotency_key=idempotency_key,
        )
        return PresignedUpload(msg.media_id, msg.upload_url, msg.expires_at)

    async def confirm(
        self,
        media_id: str,
        character_id: str,
        *,
        world_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> ConfirmedUpload:
        request = media_pb2.ConfirmUploadRequest(media_id=media_id, character_id=character_id)
        msg = await self._call(
            "ConfirmUpload",
            self._stub.ConfirmUpload,
            request,
            world_id=world_id,
            idempotency_key=idempotency_key,
        )
        return ConfirmedUpload(media_id, _variants(msg.variants))

    async def get_media(self, media_id: str, *, world_id: str | None = None) -> Media:
        msg = await self._call(
            "GetMedia",
            self._stub.GetMedia,
            media_pb2.GetMediaRequest(media_id=media_id),
            world_id=world_id,
        )
        return Media(
            media_id=msg.media_id,
            character_id=msg.character_id,
            world_id=msg.world_id,
            filename=msg.filename,
            content_type=msg.content_type,
            size=msg.size,
            media_type=MediaType(msg.media_type),
            variants=_variants(msg.variants),
            created_at=msg.created_at,
        )

    async def health(self) -> str:
        return await self._health(self._stub.HealthCheck, media_pb2.HealthCheckRequest())


class PostClient(GrpcClient):
    service = "PostService"
    descriptor = post_pb2.DESCRIPTOR.services_by_name["PostService"]

    def _bind(self, channel: grpc.aio.Channel) -> None:
        self._stub = post_pb2_grpc.PostServiceStub(channel)

    async def create_ai_post(
        self,
        *,
        world_id: str,
        character_id: str,
        caption: str,
        media_id: str,
        tags: list[str] | tuple[str, ...] = (),
        idempotency_key: str,
    ) -> CreatedPost:
        """Publish a post for an AI character; the media must be confirmed and its own."""
        request = post_pb2.CreateAIPostRequest(
            character_id=character_id,
            caption=caption,
            media_id=media_id,
            world_id=world_id,
            tags=list(tags),
        )
        msg = await self._call(
            "CreateAIPost",
            self._stub.CreateAIPost,
            request,
            world_id=world_id,
            idempotency_key=idempotency_key,
        )
        return CreatedPost(msg.post_id, msg.created_at)

    async def get_post(self, post_id: str, *, world_id: str | None = None) -> Post:
        msg = await self._call(
            "GetPost",
            self._stub.GetPost,
            post_pb2.GetPostRequest(post_id=post_id),
            world_id=world_id,
        )
        return Post(
            post_id=msg.post_id,
            character_id=msg.character_id,
            world_id=msg.world_id,
            caption=msg.caption,
            media_id=msg.media_id,
            media_url=msg.media_url,
            tags=tuple(msg.tags),
            created_at=msg.created_at,
        )

    async def health(self) -> str:
        return await self._health(self._stub.HealthCheck, post_pb2.HealthCheckRequest())


class WorldClient(GrpcClient):
    service = "WorldService"
    descriptor = world_pb2.DESCRIPTOR.services_by_name["WorldService"]

    def _bind(self, channel: grpc.aio.Channel) -> None:
        self._stub = world_pb2_grpc.WorldServiceStub(channel)

    async def get_world(self, world_id: str, *, user_id: str = "") -> World:
        request = world_pb2.GetWorldRequest(world_id=world_id, user_id=user_id)
        return _world(await self._call("GetWorld", self._stub.GetWorld, request, world_id=world_id))

    async def get_worlds(
        self, *, limit: int = 100, offset: int = 0, status: str = "", user_id: str = ""
    ) -> WorldPage:
        request = world_pb2.GetWorldsRequest(
            user_id=user_id, limit=limit, offset=offset, status=status
        )
        msg = await self._call("GetWorlds", self._stub.GetWorlds, request)
        return WorldPage(tuple(_world(w) for w in msg.worlds), msg.total)

    async def all_worlds(self, *, status: str = "", page_size: int = 100) -> list[World]:
        """Every world in the catalog, page by page."""
        worlds: list[World] = []
        while True:
            page = await self.get_worlds(limit=page_size, offset=len(worlds), status=status)
            worlds.extend(page.worlds)
            if not page.worlds or len(worlds) >= page.total:
                return worlds

    async def create_world(
        self,
        *,
        name: str,
        prompt: str,
        idempotency_key: str,
        description: str = "",
        user_id: str = "",
        characters_count: int = 0,
        posts_count: int = 0,
    ) -> World:
        request = world_pb2.CreateWorldRequest(
            user_id=user_id,
            name=name,
            description=description,
            prompt=prompt,
            characters_count=characters_count,
            posts_count=posts_count,
        )
        msg = await self._call(
            "CreateWorld", self._stub.CreateWorld, request, idempotency_key=idempotency_key
        )
        return _world(msg)

    async def update_world_params(
        self,
        world_id: str,
        params: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        name: str = "",
        users_count: int = 0,
        posts_count: int = 0,
    ) -> str:
        """Store the generated world description; returns the service's message."""
        request = world_pb2.UpdateWorldParamsRequest(
            world_id=world_id,
            params=json.dumps(params, ensure_ascii=False),
            name=name,
            users_count=users_count,
            posts_count=posts_count,
        )
        msg = await self._call(
            "UpdateWorldParams",
            self._stub.UpdateWorldParams,
            request,
            world_id=world_id,
            idempotency_key=idempotency_key,
        )
        return msg.message

    async def update_world_image(
        self,
        world_id: str,
        *,
        image_uuid: str = "",
        icon_uuid: str = "",
        idempotency_key: str | None = None,
    ) -> str:
        request = world_pb2.UpdateWorldImageRequest(
            world_id=world_id, image_uuid=image_uuid, icon_uuid=icon_uuid
        )
        msg = await self._call(
            "UpdateWorldImage",
            self._stub.UpdateWorldImage,
            request,
            world_id=world_id,
            idempotency_key=idempotency_key,
        )
        return msg.message

    async def health(self) -> str:
        return await self._health(self._stub.HealthCheck, world_pb2.HealthCheckRequest())
