"""PostService of the local platform: posts published on behalf of AI characters.

CreateAIPost enforces the platform's ownership rules, which shape the pipeline: the
character must be an AI of that world, and the image must have been presigned for and
confirmed by that very character. Reads the character and media stores in-process.
"""

from __future__ import annotations

from typing import Any

import grpc

from generia_pipelines.local.errors import denied, invalid, not_found, precondition, require_text
from generia_pipelines.local.stores import CharacterStore, MediaStore, PostRecord, PostStore
from generia_pipelines.proto import post_pb2, post_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

MAX_CAPTION_CHARS = 2200
MAX_TAGS = 30
MAX_TAG_CHARS = 64


def validate_tags(tags: list[str]) -> list[str]:
    if len(tags) > MAX_TAGS:
        raise invalid(f"at most {MAX_TAGS} tags are allowed, got {len(tags)}")
    for tag in tags:
        if not tag.strip():
            raise invalid("tags must not be empty")
        if len(tag) > MAX_TAG_CHARS:
            raise invalid(f"tag {tag[:20]!r}... is longer than {MAX_TAG_CHARS} characters")
    return tags


class PostService(post_pb2_grpc.PostServiceServicer):
    def __init__(
        self, *, posts: PostStore, characters: CharacterStore, media: MediaStore, public_url: str
    ) -> None:
        self._posts = posts
        self._characters = characters
        self._media = media
        self._public_url = public_url

    async def CreateAIPost(
        self, request: post_pb2.CreateAIPostRequest, context: Context
    ) -> post_pb2.CreatePostResponse:
        character_id = require_text(request.character_id, "character_id")
        media_id = require_text(request.media_id, "media_id")
        world_id = require_text(request.world_id, "world_id")
        if len(request.caption) > MAX_CAPTION_CHARS:
            raise invalid(f"caption is longer than {MAX_CAPTION_CHARS} characters")
        tags = validate_tags(list(request.tags))

        character = self._characters.get(character_id)
        if character is None:
            raise not_found(f"character {character_id} not found")
        if not character.is_ai:
            raise denied(f"character {character_id} is not an AI character")
        if character.world_id != world_id:
            raise denied(f"character {character_id} does not belong to world {world_id}")
        media = self._media.get(media_id)
        if media is None:
            raise not_found(f"media {media_id} not found")
        if media.character_id != character_id or media.world_id != world_id:
            raise denied(f"media {media_id} does not belong to character {character_id}")
        if not media.confirmed:
            raise precondition(f"media {media_id} is not confirmed; call ConfirmUpload first")

        record = self._posts.create(
            character_id=character_id,
            world_id=world_id,
            caption=request.caption,
            media_id=media_id,
            tags=tags,
        )
        return post_pb2.CreatePostResponse(post_id=record.post_id, created_at=record.created_at)

    async def GetPost(self, request: post_pb2.GetPostRequest, context: Context) -> post_pb2.Post:
        post_id = require_text(request.post_id, "post_id")
        record = self._posts.get(post_id)
        if record is None:
            raise not_found(f"post {post_id} not found")
        return self.post_message(record)

    def post_message(self, record: PostRecord) -> post_pb2.Post:
        """The post as the feed shows it, joined with its author and image."""
        character = self._characters.get(record.character_id)
        media = self._media.get(record.media_id)
        original = (
            next((v for v in media.variants if v.name == "original"), None) if media else None
        )
        return post_pb2.Post(
            post_id=record.post_id,
            character_id=record.character_id,
            display_name=character.display_name if character else "",
            caption=record.caption,
            media_url=f"{self._public_url}/media/{original.key}" if original else "",
            created_at=record.created_at,
            likes_count=record.likes_count,
            comments_count=record.comments_count,
            world_id=record.world_id,
            tags=list(record.tags),
            media_id=record.media_id,
            is_ai=character.is_ai if character else True,
        )

    async def HealthCheck(
        self, request: post_pb2.HealthCheckRequest, context: Context
    ) -> post_pb2.HealthCheckResponse:
        return post_pb2.HealthCheckResponse(status="SERVING")
