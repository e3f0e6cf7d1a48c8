"""Direct uploads to object storage through presigned PUT URLs.

A presigned URL is signed for exact bytes (size and content type), so a mismatch is caught
here before any request. An expired URL (HTTP 403, or ``expires_at`` already past) is useless
to retry: the uploader asks the Media service for a fresh one, with a new idempotency key
derived from the caller's, and reports every media id it had presigned so orphans can be
accounted for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from generia_pipelines.clients.errors import UploadError
from generia_pipelines.clients.platform import MediaClient
from generia_pipelines.clients.records import MediaType, PresignedUpload

log = logging.getLogger(__name__)


class UploadRefused(UploadError):
    """The store refused the URL (403: expired, or its signature no longer matches).

    Retrying the same URL cannot help; presigning a new one can.
    """


class _Transient(UploadError):
    """A 5xx or a connection failure: the same URL may be tried again."""


#: 400s that S3 answers when the bytes did not all arrive (a connection cut mid-upload, a
#: stalled client); the URL is still good, so they are retried like a 5xx.
_RETRYABLE_S3_CODES = frozenset({"IncompleteBody", "RequestTimeout"})


@dataclass(frozen=True)
class UploadedObject:
    """The media id whose object now holds the bytes, and the ids presigned but abandoned."""

    media_id: str
    presigns: int
    abandoned_media_ids: tuple[str, ...] = field(default_factory=tuple)


class PresignedUploader:
    """PUTs bytes to presigned URLs, re-presigning on expiry, retrying 5xx a bounded number."""

    def __init__(
        self,
        media: MediaClient,
        http: httpx.AsyncClient,
        *,
        put_attempts: int = 4,
        max_presigns: int = 3,
        expiry_margin_s: float = 5.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.media = media
        self.http = http
        self.put_attempts = put_attempts
        self.max_presigns = max_presigns
        self.expiry_margin_s = expiry_margin_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.clock = clock

    async def put(
        self, presigned: PresignedUpload, data: bytes, content_type: str, declared_size: int
    ) -> None:
        """PUT the bytes once the URL is known good; raises UploadRefused or UploadError."""
        if declared_size != len(data):
            raise UploadError(
                presigned.media_id,
                None,
                f"declared size {declared_size} differs from the {len(data)} bytes to upload",
            )
        if self.clock() >= presigned.expires_at - self.expiry_margin_s:
            raise UploadRefused(presigned.media_id, None, "presigned URL expired before the PUT")

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.put_attempts),
            wait=wait_exponential_jitter(
                multiplier=self.backoff_initial_s,
                jitter=self.backoff_initial_s,
                max=self.backoff_max_s,
            ),
            retry=retry_if_exception(lambda exc: isinstance(exc, _Transient)),
            reraise=True,
        ):
            with attempt:
                await self._put_once(presigned, data, content_type)

    async def _put_once(self, presigned: PresignedUpload, data: bytes, content_type: str) -> None:
        headers = {"Content-Type": content_type, "Content-Length": str(len(data))}
        try:
            response = await self.http.put(presigned.upload_url, content=data, headers=headers)
        except httpx.TransportError as exc:
            log.warning("upload of media %s: %s, retrying", presigned.media_id, type(exc).__name__)
            raise _Transient(presigned.media_id, None, f"connection failed: {exc!r}") from None
        if response.is_success:
            return
        summary = _summarize(response)
        if response.status_code == 403:
            raise UploadRefused(presigned.media_id, 403, summary)
        if response.status_code >= 500 or _s3_code(response) in _RETRYABLE_S3_CODES:
            log.warning(
                "upload of media %s: HTTP %d, retrying", presigned.media_id, response.status_code
            )
            raise _Transient(presigned.media_id, response.status_code, summary)
        raise UploadError(presigned.media_id, response.status_code, summary)

    async def upload(
        self,
        *,
        world_id: str,
        character_id: str,
        media_type: MediaType,
        filename: str,
        content_type: str,
        data: bytes,
        idempotency_key: str,
    ) -> UploadedObject:
        """Presign and PUT; on expiry presign again (bounded) rather than retry a dead URL."""
        abandoned: list[str] = []
        for presign_no in range(1, self.max_presigns + 1):
            key = idempotency_key if presign_no == 1 else f"{idempotency_key}#presign{presign_no}"
            presigned = await self.media.presign(
                world_id=world_id,
                character_id=character_id,
                filename=filename,
                content_type=content_type,
                size=len(data),
                media_type=media_type,
                idempotency_key=key,
            )
            try:
                await self.put(presigned, data, content_type, len(data))
            except UploadRefused as exc:
                abandoned.append(presigned.media_id)
                if presign_no == self.max_presigns:
                    raise UploadError(
                        presigned.media_id,
                        exc.status,
                        f"still refused after {presign_no} presigned URLs: {exc.details}",
                    ) from None
                log.warning(
                    "presigned URL for media %s refused (%s); asking for a new one",
                    presigned.media_id,
                    exc.details,
                )
                continue
            return UploadedObject(presigned.media_id, presign_no, tuple(abandoned))
        raise AssertionError("unreachable: the loop returns or raises")


def _s3_code(response: httpx.Response) -> str:
    return _between(response.text[:500], "Code")


def _summarize(response: httpx.Response) -> str:
    """A short reason from an S3-style error body, without echoing the signed URL."""
    body = response.text[:500]
    code = _between(body, "Code")
    message = _between(body, "Message")
    if code or message:
        return ": ".join(part for part in (code, message) if part)
    return body.strip()[:200] or response.reason_phrase


def _between(text: str, tag: str) -> str:
    start, end = text.find(f"<{tag}>"), text.find(f"</{tag}>")
    if start == -1 or end <= start:
        return ""
    return text[start + len(tag) + 2 : end].strip()
