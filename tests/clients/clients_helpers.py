"""Helpers for the client tests: settings, a bundle of open clients, test images."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

from generia_pipelines.clients.grpc_base import ChannelSettings
from generia_pipelines.clients.platform import CharacterClient, MediaClient, PostClient, WorldClient
from generia_pipelines.clients.upload import PresignedUploader
from generia_pipelines.local.stack import ThreadedStack


def settings_for(stack: ThreadedStack, var: str, **overrides: Any) -> ChannelSettings:
    """Fast-retrying settings so retry tests take milliseconds."""
    base: dict[str, Any] = {
        "address": stack.env[var],
        "address_variable": var,
        "deadline_s": 5.0,
        "max_attempts": 4,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
    }
    base.update(overrides)
    return ChannelSettings(**base)


@dataclass
class Clients:
    character: CharacterClient
    media: MediaClient
    post: PostClient
    world: WorldClient
    uploader: PresignedUploader
    http: httpx.AsyncClient


ClientsFactory = Callable[..., Any]


def png_bytes(size: int = 64, colour: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def admin_list(stack: ThreadedStack, world_id: str, what: str) -> list[dict[str, Any]]:
    """What the platform really holds for a world, from the stack's admin endpoint."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{stack.http_url}/_admin/worlds/{world_id}/{what}")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()
        return items
