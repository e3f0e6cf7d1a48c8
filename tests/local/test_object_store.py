"""The object store's presigned PUT checks and public GETs, at the HTTP level."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from stack_helpers import WORLD, StackApi, image_bytes

from generia_pipelines.local.stack import ThreadedStack
from generia_pipelines.proto import media_pb2


def _error_code(response: httpx.Response) -> str:
    match = re.search(r"<Code>(.*?)</Code>", response.text)
    assert match, response.text
    return match.group(1)


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _presigned(api: StackApi, data: bytes) -> tuple[str, str]:
    ada = await api.create_character()
    presigned = await api.presign(ada.id, data)
    return presigned.media_id, presigned.upload_url


async def _uploaded(api: StackApi) -> bool:
    [media] = await api.admin(WORLD, "media")
    return bool(media["uploaded"])


async def test_good_put_returns_etag_and_stores_the_object(api: StackApi) -> None:
    data = image_bytes()
    _, url = await _presigned(api, data)
    response = await api.put(url, data)
    assert response.status_code == 200
    assert response.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert await _uploaded(api)


async def test_put_can_be_repeated_before_confirmation(api: StackApi) -> None:
    data = image_bytes()
    _, url = await _presigned(api, data)
    assert (await api.put(url, data)).status_code == 200
    assert (await api.put(url, data)).status_code == 200


async def test_wrong_content_type_is_a_signature_mismatch(api: StackApi) -> None:
    data = image_bytes()
    _, url = await _presigned(api, data)
    response = await api.put(url, data, content_type="image/jpeg")
    assert response.status_code == 403 and _error_code(response) == "SignatureDoesNotMatch"
    assert not await _uploaded(api)


async def test_wrong_size_is_refused(api: StackApi) -> None:
    data = image_bytes()
    _, url = await _presigned(api, data)
    for body in (data + b"extra", data[:-1]):
        response = await api.put(url, body)
        assert response.status_code == 400 and _error_code(response) == "BadDigest"
    assert not await _uploaded(api)


@pytest.mark.parametrize("param", ["sig", "size", "ct", "expires"])
async def test_tampered_url_is_a_signature_mismatch(api: StackApi, param: str) -> None:
    data = image_bytes()
    _, url = await _presigned(api, data)
    tampered = {
        "sig": "0" * 64,
        "size": str(len(data) + 1),
        "ct": "image/webp",
        "expires": "9999999999",
    }[param]
    response = await api.put(_with_query(url, **{param: tampered}), data)
    assert response.status_code == 403 and _error_code(response) == "SignatureDoesNotMatch"
    assert not await _uploaded(api)


async def test_url_of_another_media_is_a_signature_mismatch(api: StackApi) -> None:
    data = image_bytes()
    first, url = await _presigned(api, data)
    other, _ = await _presigned(api, data)
    response = await api.put(url.replace(first, other), data)
    assert response.status_code == 403 and _error_code(response) == "SignatureDoesNotMatch"


async def test_missing_query_parameters_are_refused(api: StackApi) -> None:
    data = image_bytes()
    _, url = await _presigned(api, data)
    response = await api.put(url.split("?")[0], data)
    assert response.status_code == 403 and _error_code(response) == "AccessDenied"


async def test_expired_url_is_refused(stack: ThreadedStack, api: StackApi) -> None:
    stack.faults.expire_urls_early()
    data = image_bytes()
    _, url = await _presigned(api, data)
    response = await api.put(url, data)
    assert response.status_code == 403 and _error_code(response) == "AccessDenied"
    assert "Request has expired" in response.text
    assert not await _uploaded(api)


async def test_short_ttl_expires_while_waiting(stack: ThreadedStack, api: StackApi) -> None:
    stack.faults.set_url_ttl(0)
    data = image_bytes()
    _, url = await _presigned(api, data)
    await asyncio.sleep(1.1)
    response = await api.put(url, data)
    assert response.status_code == 403 and "Request has expired" in response.text


async def test_put_after_confirmation_is_refused(api: StackApi) -> None:
    ada = await api.create_character()
    data = image_bytes()
    presigned = await api.presign(ada.id, data)
    assert (await api.put(presigned.upload_url, data)).status_code == 200
    await api.media.ConfirmUpload(
        media_pb2.ConfirmUploadRequest(media_id=presigned.media_id, character_id=ada.id)
    )
    response = await api.put(presigned.upload_url, data)
    assert response.status_code == 409 and _error_code(response) == "OperationAborted"


def _raw_put(url: str, headers: dict[str, str], body: bytes) -> bytes:
    """A PUT whose body is cut short of its Content-Length (httpx refuses to send one)."""
    parts = urlsplit(url)
    head = f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "Connection: close\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_truncated_body_never_stores_the_object(api: StackApi) -> None:
    data = image_bytes()
    _, url = await _presigned(api, data)
    headers = {"Content-Type": "image/png", "Content-Length": str(len(data))}
    raw = await asyncio.to_thread(_raw_put, url, headers, data[:-10])
    assert not raw.startswith(b"HTTP/1.1 200")
    assert not await _uploaded(api)
    assert (await api.put(url, data)).status_code == 200  # the store still serves


async def test_chunked_upload_without_length_is_refused(api: StackApi) -> None:
    data = image_bytes()
    _, url = await _presigned(api, data)

    async def chunks():  # type: ignore[no-untyped-def]
        yield data

    response = await api.http.put(url, content=chunks(), headers={"Content-Type": "image/png"})
    assert response.status_code == 411 and _error_code(response) == "MissingContentLength"


async def test_get_of_unknown_or_escaping_keys_is_404(api: StackApi) -> None:
    for key in ("nope/none.png", "..%2F..%2Fetc%2Fpasswd", "%2E%2E/character.db"):
        response = await api.http.get(f"{api.base}/media/{key}")
        assert response.status_code == 404, key
        assert _error_code(response) == "NoSuchKey"
