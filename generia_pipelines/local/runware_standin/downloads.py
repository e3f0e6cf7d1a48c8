"""Plain HTTP beside the WebSocket, on the same port: image downloads and a health check.

Runware answers ``outputType: URL`` with a link to its CDN; the stand-in keeps the bytes of
its latest images and serves them under ``/images/<imageUUID>.<ext>``.
"""

from __future__ import annotations

from collections import OrderedDict
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from generia_pipelines.local.runware_standin.protocol import EXTENSIONS, KEPT_IMAGES


class ImageStore:
    """The latest ``KEPT_IMAGES`` images by imageUUID, with their content type."""

    def __init__(self) -> None:
        self._images: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        #: ``http://host:port`` of the server, set once it listens.
        self.base_url = ""

    def keep(self, image_uuid: str, body: bytes, content_type: str) -> str:
        """Store an image; returns the URL it is downloaded from."""
        self._images[image_uuid] = (body, content_type)
        while len(self._images) > KEPT_IMAGES:
            self._images.popitem(last=False)
        extension = EXTENSIONS.get(content_type, "bin")
        return f"{self.base_url}/images/{image_uuid}.{extension}"

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer an HTTP request, or return None to let a WebSocket upgrade proceed."""
        path = request.path.split("?", 1)[0]
        if path.startswith("/images/"):
            return self._download(connection, path.rsplit("/", 1)[-1].split(".", 1)[0])
        if path == "/health":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return None

    def _download(self, connection: ServerConnection, image_uuid: str) -> Response:
        entry = self._images.get(image_uuid)
        if entry is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "no such image\n")
        body, content_type = entry
        # respond() writes a text body; swap in the image's bytes and headers.
        response = connection.respond(HTTPStatus.OK, "")
        del response.headers["Content-Type"]
        del response.headers["Content-Length"]
        response.headers["Content-Type"] = content_type
        response.headers["Content-Length"] = str(len(body))
        response.body = body
        return response
