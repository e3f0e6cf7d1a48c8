"""UnitWork's upload step against a real local stack, outside Dagster."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from generia_pipelines.budget import Budget
from generia_pipelines.clients.errors import UploadError
from generia_pipelines.clients.grpc_base import ChannelSettings
from generia_pipelines.clients.platform import CharacterClient, MediaClient
from generia_pipelines.clients.records import MediaType
from generia_pipelines.clients.upload import PresignedUploader
from generia_pipelines.generation.planning import post_key
from generia_pipelines.ledger import Holder, Ledger, Stage
from generia_pipelines.local.stack import ThreadedStack
from generia_pipelines.units.session import ClaimSession
from generia_pipelines.units.work import UnitWork

WORLD = "dead-urls"
DAY = date(2026, 11, 20)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _settings(stack: ThreadedStack, var: str) -> ChannelSettings:
    return ChannelSettings(address=stack.env[var], backoff_initial_s=0.01, backoff_max_s=0.05)


async def test_a_failed_upload_is_not_replayed_with_its_dead_urls(
    stack: ThreadedStack, tmp_path: Path
) -> None:
    """Every presigned URL of the first attempt is dead. With the platform honouring the
    presign idempotency keys, reusing them would replay those URLs on every retry forever."""
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger:
        async with (
            CharacterClient(_settings(stack, "GENERIA_CHARACTER_ADDR")) as characters,
            MediaClient(_settings(stack, "GENERIA_MEDIA_ADDR")) as media,
            httpx.AsyncClient(timeout=10) as http,
        ):
            author = await characters.create_ai_character(
                WORLD, "Ada", idempotency_key=f"characters/{WORLD}/0"
            )
            uploader = PresignedUploader(media, http, backoff_initial_s=0.01)
            claims = ClaimSession(ledger, Holder.new("test-run"))
            work = UnitWork(
                WORLD,
                DAY.isoformat(),
                Budget(None, None, None),
                ledger,
                claims,
                media=media,
                uploader=uploader,
            )
            key = post_key(WORLD, DAY, 0)
            assert await claims.acquire(key)
            ledger.record_text(key, {"value": {}}, character_id=author.id)
            ledger.record_image(key, _png(), {"extension": ".png"}, 0.0006)
            image = ledger.load_image(key)
            assert image is not None

            def unit() -> Any:
                return ledger.get(key)

            stack.faults.expire_urls_early(True)
            with pytest.raises(UploadError, match="still refused after 3 presigned URLs"):
                await work.upload_and_confirm(unit(), image, author.id, MediaType.POST_IMAGE)
            stack.faults.expire_urls_early(False)
            confirmed, _ = await work.upload_and_confirm(
                unit(), image, author.id, MediaType.POST_IMAGE
            )
            assert confirmed.variants
            assert unit().reached(Stage.CONFIRMED) and unit().attempts == 1
