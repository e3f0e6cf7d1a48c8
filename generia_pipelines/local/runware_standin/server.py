"""The stand-in's server: listening, connections, authentication, and handing tasks on.

One port serves both the WebSocket the SDK speaks and plain HTTP (image downloads, health).
Each connection must authenticate before its tasks run; ping is answered either way. The tasks
of a connection run concurrently and are cancelled when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from generia_pipelines.local.runware_standin.dispatch import TaskDispatcher
from generia_pipelines.local.runware_standin.downloads import ImageStore
from generia_pipelines.local.runware_standin.faults import Faults, Stats
from generia_pipelines.local.runware_standin.generation import Generator
from generia_pipelines.local.runware_standin.protocol import DEFAULT_API_KEY, is_uuid
from generia_pipelines.local.runware_standin.replies import refuse, send
from generia_pipelines.local.runware_standin.tasks import TaskMemory

#: The package's name: the loggers kept the names they had as one module.
_LOGGER_NAME = __name__.rpartition(".")[0]
log = logging.getLogger(_LOGGER_NAME)
_API_KEY_FIELD = re.compile(r"""(['"]apiKey['"]\s*:\s*['"])[^'"]*""")


class _RedactApiKeys(logging.Filter):
    """websockets logs every frame at debug; the auth frame carries the key."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = _API_KEY_FIELD.sub(r"\1***", message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_ws_log = logging.getLogger(f"{_LOGGER_NAME}.ws")
_ws_log.addFilter(_RedactApiKeys())


@dataclass
class _Session:
    """One connection's state: whether it authenticated, and its tasks still running."""

    authenticated: bool = False
    running: set[asyncio.Task[None]] = field(default_factory=set)


class RunwareStandin:
    """The server; create it with :func:`start`."""

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, seed: int = 0) -> None:
        self.api_key = api_key
        self.faults = Faults(_rng=random.Random(seed))
        self.stats = Stats()
        self._server: Server | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._images = ImageStore()
        memory = TaskMemory()
        generator = Generator(
            faults=self.faults,
            stats=self.stats,
            rng=random.Random(seed),
            memory=memory,
            images=self._images,
        )
        self._dispatcher = TaskDispatcher(stats=self.stats, memory=memory, generator=generator)

    def __repr__(self) -> str:
        return f"RunwareStandin(url={self.url!r})"

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The WebSocket URL to give the SDK (``Runware(api_key, url=...)``)."""
        return f"ws://{self._host}:{self._port}/v1"

    @property
    def http_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def _start(self, host: str, port: int) -> None:
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._images.process_request,
            max_size=2**20,
            logger=_ws_log,
        )
        sockname = next(iter(self._server.sockets)).getsockname()
        self._port = int(sockname[1])
        self._host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self._images.base_url = self.http_url
        log.info("Runware stand-in listening on %s", self.url)

    async def stop(self, timeout_s: float = 5.0, grace_s: float = 0.5) -> None:
        """Close every connection and stop listening (bounded).

        A peer that does not answer the closing handshake within ``grace_s`` (a client
        gone mid-authentication, say) has its connection aborted rather than waited for.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        try:
            await asyncio.wait_for(asyncio.shield(server.wait_closed()), grace_s)
        except TimeoutError:
            for connection in list(server.all_connections):  # closing ones included
                connection.transport.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout_s)

    async def _handle(self, ws: ServerConnection) -> None:
        self.stats.bump("connections")
        self.stats.bump("open_connections")
        session = _Session()
        try:
            async for raw in ws:
                await self._on_message(ws, session, raw)
        except ConnectionClosed:
            pass
        finally:
            self.stats.bump("open_connections", -1)
            for job in session.running:
                job.cancel()
            await asyncio.gather(*session.running, return_exceptions=True)

    async def _on_message(self, ws: ServerConnection, session: _Session, raw: str | bytes) -> None:
        """A message holds one task or an array of them, taken in order."""
        try:
            payload = json.loads(raw)
        except (TypeError, ValueError):
            await refuse(
                ws,
                self.stats,
                "invalidJSON",
                "The message is not valid JSON.",
                task_type=None,
                task_uuid=None,
            )
            return
        for task in payload if isinstance(payload, list) else [payload]:
            if isinstance(task, dict):
                await self._on_task(ws, session, task)
            else:
                await refuse(
                    ws,
                    self.stats,
                    "invalidTask",
                    "Each task must be an object.",
                    task_type=None,
                    task_uuid=None,
                )

    async def _on_task(self, ws: ServerConnection, session: _Session, task: dict[str, Any]) -> None:
        """Authentication and ping are answered in line; other tasks run on their own."""
        task_type = str(task.get("taskType"))
        self.stats.count("calls", task_type)
        if task_type == "authentication":
            session.authenticated = await self._authenticate(ws, task) or session.authenticated
        elif task_type == "ping":
            await send(ws, {"data": [{"taskType": "ping", "pong": True}]})
        elif not session.authenticated:
            await refuse(
                ws,
                self.stats,
                "missingApiKey",
                "Authenticate before sending tasks.",
                task_type=task_type,
                task_uuid=task.get("taskUUID"),
            )
        else:
            job = asyncio.create_task(self._dispatcher.run(ws, task))
            session.running.add(job)
            job.add_done_callback(session.running.discard)

    async def _authenticate(self, ws: ServerConnection, task: dict[str, Any]) -> bool:
        """True once the key is accepted; a silenced authentication is never answered."""
        if self.faults.silent_auth or self.faults.draw("silent_auth_rate"):
            self.stats.bump("silent_auths")
            return False
        if task.get("apiKey") != self.api_key:
            self.stats.bump("auth_failures")
            await refuse(
                ws,
                self.stats,
                "invalidApiKey",
                "Invalid API key. Get one at https://my.runware.ai/signup",
                task_type="authentication",
                task_uuid=None,
                parameter="apiKey",
            )
            return False
        session = task.get("connectionSessionUUID")
        if not is_uuid(session):
            session = str(uuid.uuid4())
        await send(ws, {"data": [{"taskType": "authentication", "connectionSessionUUID": session}]})
        return True


async def start(
    host: str = "127.0.0.1", port: int = 0, *, api_key: str = DEFAULT_API_KEY, seed: int = 0
) -> RunwareStandin:
    """Start a stand-in on the running loop; ``port=0`` picks a free port (see ``.url``)."""
    standin = RunwareStandin(api_key=api_key, seed=seed)
    await standin._start(host, port)
    return standin
