"""MediaService of the local platform: presigned direct uploads, confirmation, variants.

The flow is the platform's: GetPresignedUploadURL reserves a media id and signs a PUT URL
for exactly the declared size and content type; the client PUTs to the object store; then
ConfirmUpload checks the object really is such an image and renders its variants.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc

from generia_pipelines.local.blobs import CONTENT_TYPE_EXTENSIONS, BlobStore
from generia_pipelines.local.db import utc_now
from generia_pipelines.local.errors import denied, invalid, not_found, precondition, require_text
from generia_pipelines.local.faults import FaultInjector
from generia_pipelines.local.images import ImageRejected, make_variants
from generia_pipelines.local.locks import KeyedLocks
from generia_pipelines.local.signing import UrlSigner
from generia_pipelines.local.stores import CharacterStore, MediaRecord, MediaStore
from generia_pipelines.proto import media_pb2, media_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_CHARACTER_TYPES = (media_pb2.MEDIA_TYPE_CHARACTER_AVATAR, media_pb2.MEDIA_TYPE_POST_IMAGE)


def object_key(media_type: int, world_id: str, character_id: str, media_id: str, ext: str) -> str:
    """The platform's layout: avatars and post images under the character, the rest world-wide."""
    if media_type == media_pb2.MEDIA_TYPE_CHARACTER_AVATAR:
        return f"{world_id}/{character_id}/avatars/{media_id}{ext}"
    if media_type == media_pb2.MEDIA_TYPE_POST_IMAGE:
        return f"{world_id}/{character_id}/posts/{media_id}{ext}"
    return f"{world_id}/world_data/{media_id}{ext}"


def variant_messages(record: MediaRecord, public_url: str) -> list[media_pb2.MediaVariant]:
    return [
        media_pb2.MediaVariant(
            name=v.name, url=f"{public_url}/media/{v.key}", width=v.width, height=v.height
        )
        for v in record.variants
    ]


class MediaService(media_pb2_grpc.MediaServiceServicer):
    def __init__(
        self,
        *,
        media: MediaStore,
        characters: CharacterStore,
        blobs: BlobStore,
        signer: UrlSigner,
        faults: FaultInjector,
        public_url: str,
        url_ttl_s: int,
        confirm_names_owner: bool = True,
    ) -> None:
        """``confirm_names_owner``: ConfirmUpload carries the owner (the specification) and
        must name it; the platform's head revision confirms by media id alone."""
        self._confirm_names_owner = confirm_names_owner
        self._media = media
        self._characters = characters
        self._blobs = blobs
        self._signer = signer
        self._faults = faults
        self._public_url = public_url
        self._url_ttl_s = url_ttl_s
        self._confirm_locks = KeyedLocks()

    async def GetPresignedUploadURL(
        self, request: media_pb2.GetPresignedUploadURLRequest, context: Context
    ) -> media_pb2.GetPresignedUploadURLResponse:
        world_id = require_text(request.world_id, "world_id")
        filename = require_text(request.filename, "filename")
        ext = CONTENT_TYPE_EXTENSIONS.get(request.content_type)
        if ext is None:
            allowed = ", ".join(CONTENT_TYPE_EXTENSIONS)
            raise invalid(f"content_type {request.content_type!r} is not one of {allowed}")
        if not 0 < request.size <= MAX_UPLOAD_BYTES:
            raise invalid(f"size must be within 1..{MAX_UPLOAD_BYTES} bytes, got {request.size}")
        character_id = request.character_id.strip()
        media_type = int(request.media_type)
        if media_type not in media_pb2.MediaType.values():
            raise invalid(f"unknown media_type {media_type}")
        if media_type == media_pb2.MEDIA_TYPE_UNKNOWN:
            # Seed-era clients send no type: a character's upload is a post image.
            media_type = (
                media_pb2.MEDIA_TYPE_POST_IMAGE
                if character_id
                else media_pb2.MEDIA_TYPE_WORLD_HEADER
            )
        if media_type in _CHARACTER_TYPES and not character_id:
            name = media_pb2.MediaType.Name(media_type)  # type: ignore[arg-type]
            raise invalid(f"character_id is required for {name}")
        if character_id:
            character = self._characters.get(character_id)
            if character is None:
                raise not_found(f"character {character_id} not found")
            if character.world_id != world_id:
                raise denied(f"character {character_id} does not belong to world {world_id}")

        media_id = uuid.uuid4().hex
        key = object_key(media_type, world_id, character_id, media_id, ext)
        expires = int(time.time()) + self._faults.effective_url_ttl(self._url_ttl_s)
        self._media.create(
            MediaRecord(
                media_id=media_id,
                world_id=world_id,
                character_id=character_id,
                filename=filename,
                content_type=request.content_type,
                size=request.size,
                media_type=media_type,
                object_key=key,
                expires_at=expires,
                created_at=utc_now(),
            )
        )
        # An injected early expiry signs a dead URL but still reports the normal expiry.
        signed_expires = int(time.time()) - 1 if self._faults.url_expires_early() else expires
        url = self._signer.put_url(
            self._public_url,
            media_id=media_id,
            object_key=key,
            expires=signed_expires,
            size=request.size,
            content_type=request.content_type,
        )
        return media_pb2.GetPresignedUploadURLResponse(
            media_id=media_id, upload_url=url, expires_at=expires
        )

    async def ConfirmUpload(
        self, request: media_pb2.ConfirmUploadRequest, context: Context
    ) -> media_pb2.ConfirmUploadResponse:
        media_id = require_text(request.media_id, "media_id")
        async with self._confirm_locks.hold(media_id):
            record = self._media.get(media_id)
            if record is None:
                raise not_found(f"media {media_id} not found")
            if self._confirm_names_owner and request.character_id.strip() != record.character_id:
                raise denied(
                    f"media {media_id} does not belong to character {request.character_id!r}"
                )
            if not record.confirmed:
                if record.uploaded_at is None:
                    raise precondition(f"media {media_id}: the object was not uploaded")
                try:
                    variants = await asyncio.to_thread(
                        make_variants, self._blobs, record.object_key, record.content_type
                    )
                except ImageRejected as exc:
                    raise precondition(f"media {media_id}: {exc}") from None
                record = self._media.confirm(media_id, variants)
        return media_pb2.ConfirmUploadResponse(
            success=True, variants=variant_messages(record, self._public_url)
        )

    async def GetMedia(
        self, request: media_pb2.GetMediaRequest, context: Context
    ) -> media_pb2.Media:
        media_id = require_text(request.media_id, "media_id")
        record = self._media.get(media_id)
        if record is None:
            raise not_found(f"media {media_id} not found")
        return media_pb2.Media(
            media_id=record.media_id,
            character_id=record.character_id,
            world_id=record.world_id,
            filename=record.filename,
            content_type=record.content_type,
            size=record.size,
            variants=variant_messages(record, self._public_url),
            created_at=record.created_at,
            media_type=record.media_type,  # type: ignore[arg-type]
        )

    async def HealthCheck(
        self, request: media_pb2.HealthCheckRequest, context: Context
    ) -> media_pb2.HealthCheckResponse:
        return media_pb2.HealthCheckResponse(status="SERVING")
