"""The one SDK client a ``RunwareImages`` calls through, and what its failures mean.

``connect()`` may wait forever (no auth reply) and returns silently on a bad key: it is
bounded by ``asyncio.wait_for``, and a rejected key becomes a :class:`RunwareAuthError` (a
``ConfigError``). A client that a failed call may have wedged is retired and replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from generia_pipelines.clients.runware.errors import (
    SESSION_LOST_CODES,
    RunwareAuthError,
    RunwareUnavailable,
    RunwareUnreachable,
    api_error,
)
from generia_pipelines.clients.runware.redaction import redact
from generia_pipelines.clients.runware.sdk import close_sdk_client, new_sdk_client, runware_sdk
from generia_pipelines.clients.runware.settings import RunwareSettings

# The package's logger, as before it was split: handlers attach to it by that name.
log = logging.getLogger(__package__)

T = TypeVar("T")


@dataclass(eq=False)
class _Connection:
    """One SDK client and the calls running on it.

    A retired client is disposed only when its last call ends: disconnecting an SDK client
    under running calls sends them into the SDK's own reconnect loop on a shut-down client.
    """

    client: Any
    in_flight: int = 0
    retired: bool = False


def connect_cause(exc: BaseException, url: str) -> str:
    """The plain reason a connection could not be opened (never the key)."""
    host = urllib.parse.urlsplit(url).hostname or url
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup of {host} failed ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return f"the WebSocket upgrade was refused with HTTP {status}"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    text = redact(str(exc)) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


class RunwareConnection:
    """An authenticated SDK client, opened on demand and replaced when a call wedges it.

    ``guard`` runs before every connect: the owner's check that it is still open and on its
    event loop.
    """

    def __init__(self, settings: RunwareSettings, guard: Callable[[], object]) -> None:
        self.settings = settings
        self._guard = guard
        self._lock = asyncio.Lock()
        self._current: _Connection | None = None
        #: How often, and how last, a connect failed: shared with the calls waiting for it.
        self._failures = 0
        self._unreachable: RunwareUnreachable | None = None
        self._retired: set[_Connection] = set()

    @property
    def is_open(self) -> bool:
        return self._current is not None

    async def connect(self) -> None:
        """Open and authenticate the connection now (setup errors surface here).

        Calls that were waiting for the connection while an attempt failed get that
        failure at once instead of each trying again in turn: during an outage, ten calls
        in flight would otherwise take ten connect timeouts one after another to give up.
        A call's own retry, made after the failure, tries again.
        """
        self._guard()
        failures_seen = self._failures
        async with self._lock:
            if self._current is not None:
                return
            if self._failures > failures_seen and self._unreachable is not None:
                raise RunwareUnreachable(self._unreachable.detail)
            try:
                self._current = _Connection(await self._open_client())
            except RunwareUnreachable as exc:
                self._unreachable = exc
                self._failures += 1
                raise

    async def close(self) -> None:
        """Dispose of every client, retired ones included (bounded)."""
        connections = [*self._retired, *([self._current] if self._current else [])]
        self._current = None
        self._retired.clear()
        for connection in connections:
            await self._dispose(connection.client)

    async def call(
        self,
        what: str,
        call: Callable[[Any], Awaitable[T]],
        timeout_s: float,
        uuid: Callable[[], str | None],
    ) -> T:
        """One bounded SDK call, its failures mapped onto our error classes.

        Failing to open the connection raises :class:`RunwareUnreachable` (nothing sent,
        ``billed=False``); an API error ``billed=False``; a timeout or a lost connection
        after the request went out ``billed=None``.
        """
        sdk = runware_sdk()
        async with self._using_client() as connection:
            try:
                return await asyncio.wait_for(call(connection.client), timeout_s)
            except TimeoutError:
                self._retire(connection)
                raise RunwareUnavailable(
                    f"Runware {what} did not finish within {timeout_s:g}s", task_uuid=uuid()
                ) from None
            except sdk.RunwareAPIError as exc:
                error = api_error(exc, uuid())
                if error.code in SESSION_LOST_CODES:
                    self._retire(connection)
                raise error from None
            except ConnectionError as exc:
                # The SDK already reconnected and resent up to its own limit: start afresh.
                self._retire(connection)
                raise RunwareUnavailable(
                    f"lost the connection to Runware at {self.settings.url} during {what}: "
                    f"{redact(str(exc))}",
                    task_uuid=uuid(),
                ) from None
            except Exception as exc:
                # The SDK signals its own timeouts and empty answers with a bare Exception.
                if type(exc) is not Exception:
                    raise
                raise RunwareUnavailable(
                    f"Runware {what} failed: {redact(str(exc))}", task_uuid=uuid()
                ) from None

    async def _open_client(self) -> Any:
        settings = self.settings
        client = new_sdk_client(settings.api_key, settings.url)
        try:
            await asyncio.wait_for(client.connect(), settings.connect_timeout_s)
        except TimeoutError:
            await self._dispose(client)
            raise RunwareUnreachable(
                f"Runware unreachable at {settings.url}: it did not complete authentication "
                f"within {settings.connect_timeout_s:g}s (connect_timeout_s)"
            ) from None
        except Exception as exc:
            await self._dispose(client)
            raise RunwareUnreachable(
                f"Runware unreachable at {settings.url}: {connect_cause(exc, settings.url)}"
            ) from None
        except BaseException:
            await self._dispose(client)
            raise
        if not client.isAuthenticated():
            reason = redact(str(getattr(client, "_invalidAPIkey", None) or "no session"))
            await self._dispose(client)
            raise RunwareAuthError(
                f"Runware at {settings.url} rejected the API key from RUNWARE_API_KEY: {reason}"
            )
        log.debug("connected to Runware at %s", settings.url)
        return client

    async def _dispose(self, client: Any) -> None:
        await close_sdk_client(client, self.settings.close_timeout_s)

    def _retire(self, connection: _Connection) -> None:
        """Stop handing out a client the SDK may have wedged; the next call opens a new one."""
        if connection.retired:
            return
        connection.retired = True
        self._retired.add(connection)
        if self._current is connection:
            self._current = None
            log.warning("resetting the Runware connection after a failed call")

    @contextlib.asynccontextmanager
    async def _using_client(self) -> AsyncIterator[_Connection]:
        """The current client (opened on demand), counted while a call runs on it."""
        await self.connect()
        connection = self._current
        if connection is None:  # closed or retired meanwhile by a concurrent failure
            raise RunwareUnavailable("the Runware connection was reset; retrying", billed=False)
        connection.in_flight += 1
        try:
            yield connection
        finally:
            connection.in_flight -= 1
            if connection.retired and connection.in_flight == 0:
                self._retired.discard(connection)
                await self._dispose(connection.client)
