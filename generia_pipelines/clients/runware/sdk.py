"""The ``runware`` SDK: imported once, lazily, and its client made to close every socket.

- The import reads the SDK's timeouts and in-flight cap from the environment, and resets
  global logging (asyncio's logger to CRITICAL): :func:`runware_sdk` raises the cap for the
  import and restores the loggers afterwards.
- After a dropped connection the SDK reconnects twice and orphans the first socket:
  :func:`new_sdk_client` builds a client that remembers every socket it opens, and
  :func:`close_sdk_client` closes them all.
- ``connect()`` may wait forever (no auth reply): bound it with ``asyncio.wait_for``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from types import ModuleType
from typing import Any, Final

from generia_pipelines.clients.runware.redaction import (
    preserved_global_logging,
    redact_sdk_loggers,
    remember_secret,
)
from generia_pipelines.clients.runware.settings import DEFAULT_RUNWARE_URL

SDK_CAP_VARIABLE: Final = "RUNWARE_MAX_CONCURRENT_REQUESTS"
# Our own semaphore is the real limit; the SDK's per-client cap (15 by default) only has to
# stay out of the way, so it is raised for the import unless the user chose a value.
_SDK_CAP_FOR_IMPORT: Final = 1024

_sdk_lock = threading.Lock()
_sdk_module: ModuleType | None = None
_tracked_class: type | None = None


def runware_sdk() -> ModuleType:
    """The ``runware`` module, imported once with the environment and logging it needs."""
    global _sdk_module
    with _sdk_lock:
        if _sdk_module is not None:
            return _sdk_module
        first_import = "runware" not in sys.modules
        set_cap = first_import and SDK_CAP_VARIABLE not in os.environ
        if set_cap:
            os.environ[SDK_CAP_VARIABLE] = str(_SDK_CAP_FOR_IMPORT)
        try:
            with preserved_global_logging():
                import runware
        finally:
            if set_cap:
                os.environ.pop(SDK_CAP_VARIABLE, None)
        redact_sdk_loggers()
        _sdk_module = runware
        return runware


def sdk_in_flight_cap() -> int:
    """How many calls the SDK lets one client have in flight (fixed at its import)."""
    runware_sdk()
    base = sys.modules.get("runware.base")
    return int(getattr(base, "MAX_CONCURRENT_REQUESTS", 15))


def _client_class() -> type:
    """The SDK client, subclassed to remember every socket it opens.

    After a dropped connection the SDK reconnects twice (its retry loop, then a background
    task a second later); the first socket is orphaned and ``disconnect()`` never closes it.
    """
    global _tracked_class
    if _tracked_class is None:
        sdk = runware_sdk()

        class TrackedRunware(sdk.Runware):  # type: ignore[name-defined]  # untyped SDK
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.opened_sockets: list[Any] = []
                #: taskUUIDs whose results the SDK fetched with getResponse (itself, after
                #: a conflictTaskUUID on its own resend, or for our getResponse call).
                self.polled_task_uuids: set[str] = set()

            async def _pollResults(self, task_uuid: str, *args: Any, **kwargs: Any) -> Any:
                self.polled_task_uuids.add(task_uuid)
                return await super()._pollResults(task_uuid, *args, **kwargs)

            async def connect(self) -> None:
                try:
                    await super().connect()
                finally:
                    ws = getattr(self, "_ws", None)
                    self.opened_sockets = [
                        known
                        for known in self.opened_sockets
                        if known is not ws and getattr(known.state, "name", "") != "CLOSED"
                    ]
                    if ws is not None:
                        self.opened_sockets.append(ws)

        _tracked_class = TrackedRunware
    return _tracked_class


def new_sdk_client(api_key: str, url: str = DEFAULT_RUNWARE_URL) -> Any:
    """A socket-tracking SDK client, built without disturbing global logging.

    Its key is registered for redaction. Connect it with ``asyncio.wait_for`` (connect can
    wait forever) and release it with :func:`close_sdk_client`.
    """
    remember_secret(api_key)
    with preserved_global_logging():
        return _client_class()(api_key=api_key, url=url)


async def close_sdk_client(client: Any, timeout_s: float = 5.0) -> None:
    """Disconnect and close every socket the client opened, orphans included (bounded)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.disconnect(), timeout_s)
    for ws in getattr(client, "opened_sockets", ()):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), timeout_s)
