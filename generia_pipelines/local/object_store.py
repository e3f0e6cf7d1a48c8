"""The local S3 stand-in over HTTP: presigned PUT uploads and public GETs of objects.

It answers like S3 does, with XML error bodies, so the upload client is tested against the
responses it will really meet: ``SignatureDoesNotMatch`` for a tampered URL or a different
Content-Type, ``AccessDenied`` / "Request has expired" for a stale URL, ``BadDigest`` /
``IncompleteBody`` when the bytes are not the size that was signed (also injected, as a
truncated upload, by the ``truncate_rate`` fault).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Iterable
from xml.sax.saxutils import escape

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from generia_pipelines.local.blobs import BlobStore, content_type_for
from generia_pipelines.local.faults import FaultDecision, FaultInjector
from generia_pipelines.local.signing import UrlSigner
from generia_pipelines.local.stats import CallStats
from generia_pipelines.local.stores import MediaStore

PUT_METHOD = "object_store.PUT"
GET_METHOD = "object_store.GET"


def s3_error(status: int, code: str, message: str, resource: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{uuid.uuid4().hex[:16]}</RequestId>"
        "</Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def _unavailable(resource: str) -> web.Response:
    return s3_error(503, "ServiceUnavailable", "Injected fault: please retry", resource)


class ObjectStore:
    """Request handlers of the object store (uploads and downloads)."""

    def __init__(
        self,
        *,
        media: MediaStore,
        blobs: BlobStore,
        signer: UrlSigner,
        faults: FaultInjector,
        stats: CallStats,
    ) -> None:
        self._media = media
        self._blobs = blobs
        self._signer = signer
        self._faults = faults
        self._stats = stats

    def routes(self) -> list[web.RouteDef]:
        return [
            web.put("/upload/{media_id}", self.put_object),
            web.get("/media/{key:.+}", self.get_object),
        ]

    async def _fault(self, method: str) -> FaultDecision:
        """Count the call, apply its injected latency and return the drawn fault."""
        self._stats.call(method)
        decision = self._faults.decide(method)
        if decision.latency_s > 0:
            await asyncio.sleep(decision.latency_s)
        if decision.error_code is not None:
            self._stats.injected_error(method)
        return decision

    async def put_object(self, request: web.Request) -> web.Response:
        resource = request.path
        decision = await self._fault(PUT_METHOD)
        if decision.error_code is not None:
            return _unavailable(resource)
        if decision.truncate_body:
            # The bytes arrive short (a connection cut mid-upload): S3 stores nothing and says so.
            await self._read_body(request, request.content_length or 0)
            self._stats.injected_error(PUT_METHOD)
            return s3_error(
                400,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length",
                resource,
            )
        response = await self._put(request, resource)
        if response.status >= 300:
            self._stats.failure(PUT_METHOD)
        elif decision.drop_after_commit:
            # The object is stored; only the answer is lost, as with a dropped connection.
            self._stats.dropped(PUT_METHOD)
            return _unavailable(resource)
        return response

    async def _put(self, request: web.Request, resource: str) -> web.Response:
        media_id = request.match_info["media_id"]
        query = request.query
        try:
            expires, size = int(query["expires"]), int(query["size"])
            content_type, sig = query["ct"], query["sig"]
        except (KeyError, ValueError):
            return s3_error(
                403,
                "AccessDenied",
                "Query-string authentication requires the expires, size, ct and sig parameters",
                resource,
            )
        record = self._media.get(media_id)
        if record is None or not self._signer.verify(
            sig,
            media_id=media_id,
            object_key=record.object_key,
            expires=expires,
            size=size,
            content_type=content_type,
        ):
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided",
                resource,
            )
        if time.time() > expires:
            return s3_error(403, "AccessDenied", "Request has expired", resource)
        if record.confirmed:
            return s3_error(
                409,
                "OperationAborted",
                "The upload was already confirmed; request a new upload URL",
                resource,
            )
        sent_type = request.headers.get("Content-Type", "").strip().lower()
        if sent_type != content_type.lower():
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                f"Content-Type {sent_type or '(none)'!r} does not match the signed content type",
                resource,
            )
        if request.content_length is None:
            return s3_error(411, "MissingContentLength", "Content-Length is required", resource)
        if request.content_length != size:
            return s3_error(
                400,
                "BadDigest",
                f"Content-Length {request.content_length} does not match the signed size {size}",
                resource,
            )
        data = await self._read_body(request, size)
        if data is None or len(data) != size:
            return s3_error(
                400,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the signed size",
                resource,
            )
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        await asyncio.to_thread(self._blobs.write, record.object_key, data)
        self._media.mark_uploaded(media_id, etag)
        return web.Response(status=200, headers={"ETag": f'"{etag}"'})

    @staticmethod
    async def _read_body(request: web.Request, size: int) -> bytes | None:
        """Read at most size + 1 bytes, so an oversized body is caught without buffering it."""
        chunks: list[bytes] = []
        total = 0
        try:
            async for chunk in request.content.iter_chunked(64 * 1024):
                chunks.append(chunk)
                total += len(chunk)
                if total > size:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, HttpProcessingError, ValueError):
            return None
        return b"".join(chunks)

    async def get_object(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        decision = await self._fault(GET_METHOD)
        if decision.error_code is not None:
            return _unavailable(request.path)
        if not self._blobs.exists(key):
            self._stats.failure(GET_METHOD)
            return s3_error(404, "NoSuchKey", "The specified key does not exist.", request.path)
        return web.FileResponse(
            self._blobs.path(key), headers={"Content-Type": content_type_for(key)}
        )


class HttpServer:
    """An aiohttp app on the current loop; port 0 picks a free port."""

    def __init__(self, routes: Iterable[web.RouteDef]) -> None:
        self._app = web.Application(client_max_size=1024**2)
        self._app.add_routes(list(routes))
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        bound = self._runner.addresses[0]
        self.port = int(bound[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
