"""Clients of the Generia services pointed at a real local stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from clients_helpers import Clients, ClientsFactory, settings_for

from generia_pipelines.clients.platform import CharacterClient, MediaClient, PostClient, WorldClient
from generia_pipelines.clients.upload import PresignedUploader
from generia_pipelines.local.stack import ThreadedStack


@pytest.fixture
async def clients_factory() -> AsyncIterator[ClientsFactory]:
    opened: list[Clients] = []

    async def make(stack: ThreadedStack, **overrides: Any) -> Clients:
        http = httpx.AsyncClient(timeout=10)
        media = await MediaClient(settings_for(stack, "GENERIA_MEDIA_ADDR", **overrides)).open()
        clients = Clients(
            character=await CharacterClient(
                settings_for(stack, "GENERIA_CHARACTER_ADDR", **overrides)
            ).open(),
            media=media,
            post=await PostClient(settings_for(stack, "GENERIA_POST_ADDR", **overrides)).open(),
            world=await WorldClient(settings_for(stack, "GENERIA_WORLD_ADDR", **overrides)).open(),
            uploader=PresignedUploader(media, http, backoff_initial_s=0.01, backoff_max_s=0.05),
            http=http,
        )
        opened.append(clients)
        return clients

    yield make
    for c in opened:
        for client in (c.character, c.media, c.post, c.world):
            await client.close()
        await c.http.aclose()


@pytest.fixture
async def clients(stack: ThreadedStack, clients_factory: ClientsFactory) -> Clients:
    made: Clients = await clients_factory(stack)
    return made
