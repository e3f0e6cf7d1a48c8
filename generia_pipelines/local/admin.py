"""HTTP admin and control endpoints of the local stack, beside the object store.

The platform has no RPC listing what AI characters or posts a world has; tests and the demo
page still need to look, so these read-only views expose the stores. ``/_control/faults``
changes fault injection from another process (a benchmark, the CLI user's shell).
When the stack has a token, these endpoints require it as a bearer token too.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from aiohttp import web

from generia_pipelines.local.faults import FaultInjector
from generia_pipelines.local.stats import CallStats
from generia_pipelines.local.stores import (
    CharacterRecord,
    CharacterStore,
    MediaRecord,
    MediaStore,
    PostRecord,
    PostStore,
    WorldRecord,
    WorldStore,
)


class Admin:
    def __init__(
        self,
        *,
        characters: CharacterStore,
        media: MediaStore,
        posts: PostStore,
        worlds: WorldStore,
        faults: FaultInjector,
        stats: CallStats,
        token: str | None,
        public_url: Callable[[], str],
    ) -> None:
        self._characters = characters
        self._media = media
        self._posts = posts
        self._worlds = worlds
        self._faults = faults
        self._stats = stats
        self._expected_auth = f"Bearer {token}".encode() if token else None
        self._public_url = public_url

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_admin/worlds", self.worlds),
            web.get("/_admin/worlds/{world_id}/characters", self.characters),
            web.get("/_admin/worlds/{world_id}/posts", self.posts),
            web.get("/_admin/worlds/{world_id}/media", self.media),
            web.get("/_admin/stats", self.stats),
            web.delete("/_admin/stats", self.reset_stats),
            web.get("/_control/faults", self.get_faults),
            web.post("/_control/faults", self.set_faults),
            web.delete("/_control/faults", self.clear_faults),
            web.get("/healthz", self.health),
        ]

    def _authorize(self, request: web.Request) -> None:
        if self._expected_auth is None:
            return
        sent = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(sent, self._expected_auth):
            raise web.HTTPUnauthorized(
                text='{"error": "missing or invalid bearer token"}',
                content_type="application/json",
            )

    def _url(self, key: str) -> str:
        return f"{self._public_url()}/media/{key}"

    def _media_json(self, record: MediaRecord) -> dict[str, Any]:
        return {
            "media_id": record.media_id,
            "world_id": record.world_id,
            "character_id": record.character_id,
            "filename": record.filename,
            "content_type": record.content_type,
            "size": record.size,
            "media_type": record.media_type,
            "object_key": record.object_key,
            "created_at": record.created_at,
            "uploaded": record.uploaded_at is not None,
            "confirmed": record.confirmed,
            "variants": [
                {"name": v.name, "url": self._url(v.key), "width": v.width, "height": v.height}
                for v in record.variants
            ],
        }

    @staticmethod
    def _character_json(record: CharacterRecord) -> dict[str, Any]:
        return {
            "id": record.id,
            "world_id": record.world_id,
            "real_user_id": record.real_user_id,
            "is_ai": record.is_ai,
            "display_name": record.display_name,
            "avatar_media_id": record.avatar_media_id,
            "meta": record.meta,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }

    def _post_json(self, record: PostRecord) -> dict[str, Any]:
        character = self._characters.get(record.character_id)
        media = self._media.get(record.media_id)
        original = (
            next((v for v in media.variants if v.name == "original"), None) if media else None
        )
        return {
            "post_id": record.post_id,
            "world_id": record.world_id,
            "character_id": record.character_id,
            "display_name": character.display_name if character else None,
            "caption": record.caption,
            "tags": list(record.tags),
            "media_id": record.media_id,
            "media_url": self._url(original.key) if original else None,
            "created_at": record.created_at,
        }

    @staticmethod
    def _world_json(record: WorldRecord) -> dict[str, Any]:
        return {
            "id": record.id,
            "name": record.name,
            "status": record.status,
            "characters_count": record.characters_count,
            "posts_count": record.posts_count,
            "params": record.params,
            "created_at": record.created_at,
        }

    async def worlds(self, request: web.Request) -> web.Response:
        self._authorize(request)
        records, _ = self._worlds.page(limit=10_000, offset=0, status="")
        return web.json_response([self._world_json(r) for r in records])

    async def characters(self, request: web.Request) -> web.Response:
        self._authorize(request)
        records = self._characters.of_world(request.match_info["world_id"])
        return web.json_response([self._character_json(r) for r in records])

    async def posts(self, request: web.Request) -> web.Response:
        self._authorize(request)
        records = self._posts.of_world(request.match_info["world_id"])
        return web.json_response([self._post_json(r) for r in records])

    async def media(self, request: web.Request) -> web.Response:
        self._authorize(request)
        records = self._media.of_world(request.match_info["world_id"])
        return web.json_response([self._media_json(r) for r in records])

    async def stats(self, request: web.Request) -> web.Response:
        self._authorize(request)
        return web.json_response({"methods": self._stats.snapshot()})

    async def reset_stats(self, request: web.Request) -> web.Response:
        self._authorize(request)
        self._stats.reset()
        return web.json_response({"methods": {}})

    async def get_faults(self, request: web.Request) -> web.Response:
        self._authorize(request)
        return web.json_response(self._faults.snapshot())

    async def set_faults(self, request: web.Request) -> web.Response:
        """Body: one command object or a list of them (see ``FaultInjector.apply``)."""
        self._authorize(request)
        try:
            body = await request.json()
            commands = body if isinstance(body, list) else [body]
            for command in commands:
                if not isinstance(command, dict):
                    raise ValueError("each fault command must be a JSON object")
                self._faults.apply(command)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self._faults.snapshot())

    async def clear_faults(self, request: web.Request) -> web.Response:
        self._authorize(request)
        self._faults.clear()
        return web.json_response(self._faults.snapshot())

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "SERVING"})
