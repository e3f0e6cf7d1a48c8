"""Presigned uploads against the local object store: exact bytes, expiry, 5xx, tampering."""

from __future__ import annotations

import time

import pytest
from clients_helpers import Clients, png_bytes

from generia_pipelines.clients.errors import UploadError
from generia_pipelines.clients.records import MediaType, PresignedUpload
from generia_pipelines.clients.upload import PresignedUploader, UploadRefused
from generia_pipelines.local.stack import ThreadedStack

WORLD = "upload-world"


async def _character(clients: Clients) -> str:
    made = await clients.character.create_ai_character(
        WORLD, "Uploader", idempotency_key=f"characters/{WORLD}/0"
    )
    return made.id


async def _presign(clients: Clients, character_id: str, data: bytes, key: str) -> PresignedUpload:
    return await clients.media.presign(
        world_id=WORLD,
        character_id=character_id,
        filename="img.png",
        content_type="image/png",
        size=len(data),
        media_type=MediaType.POST_IMAGE,
        idempotency_key=key,
    )


def _puts(stack: ThreadedStack) -> int:
    return stack.stats.get("object_store.PUT").calls


async def test_upload_then_confirm(stack: ThreadedStack, clients: Clients) -> None:
    character_id = await _character(clients)
    data = png_bytes(96)
    uploaded = await clients.uploader.upload(
        world_id=WORLD,
        character_id=character_id,
        media_type=MediaType.POST_IMAGE,
        filename="img.png",
        content_type="image/png",
        data=data,
        idempotency_key="posts/upload-world/good",
    )
    assert (uploaded.presigns, uploaded.abandoned_media_ids) == (1, ())
    confirmed = await clients.media.confirm(uploaded.media_id, character_id, world_id=WORLD)
    original = await clients.http.get(confirmed.url("original"))
    assert original.content == data
    assert _puts(stack) == 1


async def test_declared_size_must_match_bytes(stack: ThreadedStack, clients: Clients) -> None:
    character_id = await _character(clients)
    data = png_bytes()
    presigned = await _presign(clients, character_id, data, "k-size")
    with pytest.raises(UploadError, match=f"media {presigned.media_id}.*declared size"):
        await clients.uploader.put(presigned, data, "image/png", declared_size=len(data) + 1)
    assert _puts(stack) == 0  # refused before any request


async def test_wrong_content_type_is_refused_by_the_store(clients: Clients) -> None:
    character_id = await _character(clients)
    data = png_bytes()
    presigned = await _presign(clients, character_id, data, "k-type")
    with pytest.raises(UploadRefused) as exc:
        await clients.uploader.put(presigned, data, "image/jpeg", declared_size=len(data))
    assert exc.value.status == 403 and presigned.media_id in str(exc.value)
    assert "SignatureDoesNotMatch" in str(exc.value)


async def test_tampered_signature_is_refused(clients: Clients) -> None:
    character_id = await _character(clients)
    data = png_bytes()
    presigned = await _presign(clients, character_id, data, "k-sig")
    url = presigned.upload_url
    sig_at = url.index("sig=") + 4
    flipped = "0" if url[sig_at] != "0" else "1"
    tampered = PresignedUpload(
        presigned.media_id, url[:sig_at] + flipped + url[sig_at + 1 :], presigned.expires_at
    )
    with pytest.raises(UploadRefused, match=r"HTTP 403.*SignatureDoesNotMatch"):
        await clients.uploader.put(tampered, data, "image/png", declared_size=len(data))


async def test_url_refused_as_expired_is_presigned_again(
    stack: ThreadedStack, clients: Clients
) -> None:
    character_id = await _character(clients)
    stack.faults.expire_urls_early(True)
    clock_reads: list[float] = []

    def clock() -> float:
        # The first URL was born expired; trust the server to say so, then heal the store.
        if not clock_reads:
            stack.faults.expire_urls_early(False)
        clock_reads.append(time.time())
        return clock_reads[-1]

    uploader = PresignedUploader(clients.media, clients.http, expiry_margin_s=-3600, clock=clock)
    uploaded = await uploader.upload(
        world_id=WORLD,
        character_id=character_id,
        media_type=MediaType.POST_IMAGE,
        filename="img.png",
        content_type="image/png",
        data=png_bytes(),
        idempotency_key="posts/upload-world/expired",
    )
    assert uploaded.presigns == 2 and len(uploaded.abandoned_media_ids) == 1
    assert uploaded.media_id not in uploaded.abandoned_media_ids
    assert _puts(stack) == 2
    await clients.media.confirm(uploaded.media_id, character_id, world_id=WORLD)


async def test_url_past_expires_at_is_not_even_tried(
    stack: ThreadedStack, clients: Clients
) -> None:
    character_id = await _character(clients)
    stack.faults.set_url_ttl(1)  # shorter than the uploader's safety margin
    with pytest.raises(UploadError, match="still refused after 3 presigned URLs"):
        await clients.uploader.upload(
            world_id=WORLD,
            character_id=character_id,
            media_type=MediaType.POST_IMAGE,
            filename="img.png",
            content_type="image/png",
            data=png_bytes(),
            idempotency_key="posts/upload-world/short",
        )
    assert _puts(stack) == 0
    assert stack.stats.get("media.GetPresignedUploadURL").calls == 3


async def test_server_errors_are_retried_then_reported(
    stack: ThreadedStack, clients: Clients
) -> None:
    character_id = await _character(clients)
    data = png_bytes()
    stack.faults.set("object_store.PUT", times=2)
    ok = await _presign(clients, character_id, data, "k-5xx")
    await clients.uploader.put(ok, data, "image/png", declared_size=len(data))
    assert _puts(stack) == 3

    stack.faults.set("object_store.PUT", times=10)
    doomed = await _presign(clients, character_id, data, "k-5xx-2")
    with pytest.raises(UploadError, match=f"media {doomed.media_id} failed \\(HTTP 503\\)"):
        await clients.uploader.put(doomed, data, "image/png", declared_size=len(data))
    assert _puts(stack) == 3 + 4


async def test_truncated_body_is_retried_on_the_same_url(
    stack: ThreadedStack, clients: Clients
) -> None:
    """S3's 400 IncompleteBody means the bytes did not all arrive: the URL is still good."""
    character_id = await _character(clients)
    stack.faults.set("object_store.PUT", truncate_rate=1.0, times=2)
    uploaded = await clients.uploader.upload(
        world_id=WORLD,
        character_id=character_id,
        media_type=MediaType.POST_IMAGE,
        filename="img.png",
        content_type="image/png",
        data=png_bytes(),
        idempotency_key="posts/upload-world/truncated",
    )
    assert uploaded.presigns == 1
    assert _puts(stack) == 3
    await clients.media.confirm(uploaded.media_id, character_id, world_id=WORLD)
