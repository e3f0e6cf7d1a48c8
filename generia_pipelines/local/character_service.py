"""CharacterService of the local platform: AI and real-user characters of a world.

CreateCharacter is a plain insert, as on the platform: two identical calls make two
characters. Only an ``idempotency-key`` (handled by the interceptor) prevents that.
"""

from __future__ import annotations

from typing import Any

import grpc

from generia_pipelines.local.errors import (
    denied,
    not_found,
    precondition,
    require_json,
    require_text,
)
from generia_pipelines.local.stores import CharacterRecord, CharacterStore, MediaStore
from generia_pipelines.proto import character_pb2, character_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


def character_message(record: CharacterRecord) -> character_pb2.Character:
    message = character_pb2.Character(
        id=record.id,
        world_id=record.world_id,
        is_ai=record.is_ai,
        display_name=record.display_name,
        created_at=record.created_at,
    )
    if record.real_user_id:
        message.real_user_id = record.real_user_id
    if record.avatar_media_id:
        message.avatar_media_id = record.avatar_media_id
    if record.meta is not None:
        message.meta = record.meta
    return message


class CharacterService(character_pb2_grpc.CharacterServiceServicer):
    def __init__(self, characters: CharacterStore, media: MediaStore) -> None:
        self._characters = characters
        self._media = media

    async def CreateCharacter(
        self, request: character_pb2.CreateCharacterRequest, context: Context
    ) -> character_pb2.Character:
        world_id = require_text(request.world_id, "world_id")
        display_name = require_text(request.display_name, "display_name")
        meta = require_json(request.meta, "meta") if request.HasField("meta") else None
        record = self._characters.create(
            world_id=world_id,
            real_user_id=request.real_user_id.strip() or None,
            display_name=display_name,
            avatar_media_id=request.avatar_media_id or None,
            meta=meta,
        )
        return character_message(record)

    async def GetCharacter(
        self, request: character_pb2.GetCharacterRequest, context: Context
    ) -> character_pb2.Character:
        character_id = require_text(request.character_id, "character_id")
        record = self._characters.get(character_id)
        if record is None:
            raise not_found(f"character {character_id} not found")
        return character_message(record)

    async def GetUserCharactersInWorld(
        self, request: character_pb2.GetUserCharactersInWorldRequest, context: Context
    ) -> character_pb2.CharacterList:
        user_id = require_text(request.user_id, "user_id")
        world_id = require_text(request.world_id, "world_id")
        records = self._characters.of_user(user_id, world_id)
        return character_pb2.CharacterList(characters=[character_message(r) for r in records])

    async def UpdateCharacter(
        self, request: character_pb2.UpdateCharacterRequest, context: Context
    ) -> character_pb2.Character:
        character_id = require_text(request.character_id, "character_id")
        current = self._characters.get(character_id)
        if current is None:
            raise not_found(f"character {character_id} not found")
        display_name = (
            require_text(request.display_name, "display_name")
            if request.HasField("display_name")
            else None
        )
        meta = require_json(request.meta, "meta") if request.HasField("meta") else None
        avatar_media_id = None
        if request.HasField("avatar_media_id"):
            avatar_media_id = require_text(request.avatar_media_id, "avatar_media_id")
            self._check_avatar(current, avatar_media_id)
        updated = self._characters.update(
            character_id,
            display_name=display_name,
            avatar_media_id=avatar_media_id,
            avatar_url=request.avatar_url if request.HasField("avatar_url") else None,
            meta=meta,
        )
        if updated is None:
            raise not_found(f"character {character_id} not found")
        return character_message(updated)

    def _check_avatar(self, character: CharacterRecord, media_id: str) -> None:
        """An avatar must be an image this character uploaded and the platform confirmed."""
        media = self._media.get(media_id)
        if media is None:
            raise not_found(f"media {media_id} not found")
        if media.character_id != character.id or media.world_id != character.world_id:
            raise denied(f"media {media_id} does not belong to character {character.id}")
        if not media.confirmed:
            raise precondition(f"media {media_id} is not confirmed; call ConfirmUpload first")

    async def HealthCheck(
        self, request: character_pb2.HealthCheckRequest, context: Context
    ) -> character_pb2.HealthCheckResponse:
        return character_pb2.HealthCheckResponse(status="SERVING")
