"""MediaService of the local stack: presigning, confirmation, variants, validation."""

from __future__ import annotations

import io
import re
import time
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
from PIL import Image
from stack_helpers import WORLD, StackApi, expect_status, image_bytes, open_api

from generia_pipelines.proto import media_pb2

INVALID = grpc.StatusCode.INVALID_ARGUMENT
MiB = 1024 * 1024


async def test_presign_returns_hex_id_signed_url_and_ten_minute_expiry(api: StackApi) -> None:
    ada = await api.create_character()
    data = image_bytes()
    before = int(time.time())
    presigned = await api.presign(ada.id, data)
    assert re.fullmatch(r"[0-9a-f]{32}", presigned.media_id)
    assert before + 600 <= presigned.expires_at <= int(time.time()) + 600
    url = urlsplit(presigned.upload_url)
    assert f"{url.scheme}://{url.netloc}" == api.base
    assert url.path == f"/upload/{presigned.media_id}"
    query = parse_qs(url.query)
    assert query["size"] == [str(len(data))] and query["ct"] == ["image/png"]
    assert query["expires"] == [str(presigned.expires_at)] and len(query["sig"][0]) == 64


async def test_url_ttl_is_configurable(stack_factory: Any) -> None:
    stack = stack_factory(url_ttl_s=30)
    async with AsyncExitStack() as exits:
        api = await open_api(stack, exits)
        ada = await api.create_character()
        presigned = await api.presign(ada.id, b"x" * 10)
        assert presigned.expires_at <= int(time.time()) + 30


@pytest.mark.parametrize(
    ("media_type", "layout"),
    [
        (media_pb2.MEDIA_TYPE_CHARACTER_AVATAR, "{world}/{character}/avatars/{id}{ext}"),
        (media_pb2.MEDIA_TYPE_POST_IMAGE, "{world}/{character}/posts/{id}{ext}"),
        (media_pb2.MEDIA_TYPE_WORLD_HEADER, "{world}/world_data/{id}{ext}"),
        (media_pb2.MEDIA_TYPE_WORLD_ICON, "{world}/world_data/{id}{ext}"),
    ],
)
@pytest.mark.parametrize(
    ("content_type", "ext"),
    [("image/png", ".png"), ("image/jpeg", ".jpg"), ("image/webp", ".webp")],
)
async def test_object_key_layout(
    api: StackApi, media_type: int, layout: str, content_type: str, ext: str
) -> None:
    ada = await api.create_character()
    presigned = await api.presign(
        ada.id, b"x" * 10, content_type=content_type, media_type=media_type
    )
    [media] = await api.admin(WORLD, "media")
    expected = layout.format(world=WORLD, character=ada.id, id=presigned.media_id, ext=ext)
    assert media["object_key"] == expected


async def test_world_media_needs_no_character(api: StackApi) -> None:
    presigned = await api.media.GetPresignedUploadURL(
        media_pb2.GetPresignedUploadURLRequest(
            world_id=WORLD,
            filename="header.png",
            content_type="image/png",
            size=100,
            media_type=media_pb2.MEDIA_TYPE_WORLD_HEADER,
        )
    )
    [media] = await api.admin(WORLD, "media")
    assert media["object_key"] == f"{WORLD}/world_data/{presigned.media_id}.png"


def _presign_request(**overrides: Any) -> media_pb2.GetPresignedUploadURLRequest:
    fields: dict[str, Any] = {
        "world_id": WORLD,
        "filename": "a.png",
        "content_type": "image/png",
        "size": 1000,
        "media_type": media_pb2.MEDIA_TYPE_POST_IMAGE,
    }
    fields.update(overrides)
    return media_pb2.GetPresignedUploadURLRequest(**fields)


@pytest.mark.parametrize(
    "overrides",
    [
        {"world_id": ""},
        {"filename": ""},
        {"content_type": "image/gif"},
        {"content_type": ""},
        {"content_type": "application/octet-stream"},
        {"size": 0},
        {"size": -5},
        {"size": 20 * MiB + 1},
        {"character_id": ""},
        {"character_id": "", "media_type": media_pb2.MEDIA_TYPE_CHARACTER_AVATAR},
    ],
)
async def test_presign_validation(api: StackApi, overrides: dict[str, Any]) -> None:
    ada = await api.create_character()
    request = _presign_request(**{"character_id": ada.id, **overrides})
    await expect_status(api.media.GetPresignedUploadURL(request), INVALID)
    assert await api.admin(WORLD, "media") == []


async def test_presign_accepts_exactly_twenty_mib(api: StackApi) -> None:
    ada = await api.create_character()
    presigned = await api.media.GetPresignedUploadURL(
        _presign_request(character_id=ada.id, size=20 * MiB)
    )
    assert presigned.media_id


async def test_presign_for_unknown_character_is_not_found(api: StackApi) -> None:
    await expect_status(
        api.media.GetPresignedUploadURL(_presign_request(character_id="nobody")),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_presign_for_character_of_another_world_is_denied(api: StackApi) -> None:
    stranger = await api.create_character(world_id="other-world")
    await expect_status(
        api.media.GetPresignedUploadURL(_presign_request(character_id=stranger.id)),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_confirm_makes_variants_with_real_sizes_served_over_get(api: StackApi) -> None:
    ada = await api.create_character()
    media_id = await api.upload(ada.id, image_bytes(640, 480), confirm=False)
    confirmed = await api.media.ConfirmUpload(
        media_pb2.ConfirmUploadRequest(media_id=media_id, character_id=ada.id)
    )
    assert confirmed.success
    sizes = {v.name: (v.width, v.height) for v in confirmed.variants}
    assert sizes == {"original": (640, 480), "medium": (256, 192), "thumbnail": (96, 72)}
    for variant in confirmed.variants:
        response = await api.http.get(variant.url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        assert image.format == "PNG" and image.size == (variant.width, variant.height)


async def test_confirm_twice_returns_the_same_variants(api: StackApi) -> None:
    ada = await api.create_character()
    media_id = await api.upload(ada.id, confirm=False)
    request = media_pb2.ConfirmUploadRequest(media_id=media_id, character_id=ada.id)
    first = await api.media.ConfirmUpload(request)
    second = await api.media.ConfirmUpload(request)
    assert first == second and len(first.variants) == 3


async def test_small_images_are_not_enlarged(api: StackApi) -> None:
    ada = await api.create_character()
    media_id = await api.upload(ada.id, image_bytes(64, 200), confirm=False)
    confirmed = await api.media.ConfirmUpload(
        media_pb2.ConfirmUploadRequest(media_id=media_id, character_id=ada.id)
    )
    sizes = {v.name: (v.width, v.height) for v in confirmed.variants}
    assert sizes == {"original": (64, 200), "medium": (64, 200), "thumbnail": (31, 96)}


@pytest.mark.parametrize(("fmt", "content_type"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
async def test_jpeg_and_webp_uploads(api: StackApi, fmt: str, content_type: str) -> None:
    ada = await api.create_character()
    data = image_bytes(300, 300, fmt)
    presigned = await api.presign(ada.id, data, content_type=content_type)
    assert (await api.put(presigned.upload_url, data, content_type)).status_code == 200
    confirmed = await api.media.ConfirmUpload(
        media_pb2.ConfirmUploadRequest(media_id=presigned.media_id, character_id=ada.id)
    )
    thumb = next(v for v in confirmed.variants if v.name == "thumbnail")
    response = await api.http.get(thumb.url)
    assert response.headers["content-type"] == content_type
    assert Image.open(io.BytesIO(response.content)).format == fmt


async def test_confirm_unknown_media_is_not_found(api: StackApi) -> None:
    await expect_status(
        api.media.ConfirmUpload(media_pb2.ConfirmUploadRequest(media_id="f" * 32)),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_confirm_by_another_character_is_denied(api: StackApi) -> None:
    ada = await api.create_character()
    bob = await api.create_character(name="Bob")
    media_id = await api.upload(ada.id, confirm=False)
    for character_id in (bob.id, ""):
        await expect_status(
            api.media.ConfirmUpload(
                media_pb2.ConfirmUploadRequest(media_id=media_id, character_id=character_id)
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        )


async def test_confirm_before_upload_fails_precondition(api: StackApi) -> None:
    ada = await api.create_character()
    presigned = await api.presign(ada.id, image_bytes())
    error = await expect_status(
        api.media.ConfirmUpload(
            media_pb2.ConfirmUploadRequest(media_id=presigned.media_id, character_id=ada.id)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "not uploaded" in (error.details() or "")


@pytest.mark.parametrize(
    "data", [image_bytes(fmt="JPEG"), b"definitely not an image" * 10], ids=["jpeg", "garbage"]
)
async def test_confirm_rejects_bytes_that_are_not_the_declared_type(
    api: StackApi, data: bytes
) -> None:
    ada = await api.create_character()
    presigned = await api.presign(ada.id, data, content_type="image/png")
    assert (await api.put(presigned.upload_url, data, "image/png")).status_code == 200
    await expect_status(
        api.media.ConfirmUpload(
            media_pb2.ConfirmUploadRequest(media_id=presigned.media_id, character_id=ada.id)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    [media] = await api.admin(WORLD, "media")
    assert media["uploaded"] and not media["confirmed"]


async def test_get_media(api: StackApi) -> None:
    ada = await api.create_character()
    media_id = await api.upload(ada.id, image_bytes(200, 100))
    media = await api.media.GetMedia(media_pb2.GetMediaRequest(media_id=media_id))
    assert (media.media_id, media.character_id, media.world_id) == (media_id, ada.id, WORLD)
    assert media.content_type == "image/png" and media.filename == "image.png"
    assert media.media_type == media_pb2.MEDIA_TYPE_POST_IMAGE
    assert [v.name for v in media.variants] == ["original", "medium", "thumbnail"]
    await expect_status(
        api.media.GetMedia(media_pb2.GetMediaRequest(media_id="0" * 32)),
        grpc.StatusCode.NOT_FOUND,
    )
