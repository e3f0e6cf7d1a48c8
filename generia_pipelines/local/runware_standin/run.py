"""Ways to run the stand-in besides ``await start()``: as a part of the local stack, on a
thread of its own for synchronous callers, and as a process (``python -m``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import threading
from types import TracebackType
from typing import Final, Self

from generia_pipelines.local.runware_standin.faults import Faults, Stats
from generia_pipelines.local.runware_standin.protocol import DEFAULT_API_KEY
from generia_pipelines.local.runware_standin.server import RunwareStandin, start

_DESCRIPTION: Final = (
    "Offline stand-in for the Runware WebSocket API, good enough for the real ``runware`` SDK."
)


class RunwareComponent:
    """The stand-in as a part of the local stack: exports ``RUNWARE_URL`` and its key."""

    name = "runware"

    def __init__(self, port: int = 0, *, api_key: str = DEFAULT_API_KEY, seed: int = 0) -> None:
        self.port = port
        self.api_key = api_key
        self.seed = seed
        self.standin: RunwareStandin | None = None

    async def start(self, host: str) -> dict[str, str]:
        self.standin = await start(host, self.port, api_key=self.api_key, seed=self.seed)
        return {"RUNWARE_URL": self.standin.url, "RUNWARE_API_KEY": self.api_key}

    async def stop(self) -> None:
        if self.standin is not None:
            standin, self.standin = self.standin, None
            await standin.stop()


class ThreadedRunwareStandin:
    """A stand-in on its own thread and loop, for synchronous callers; bounded start/stop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str = DEFAULT_API_KEY,
        seed: int = 0,
        timeout_s: float = 10.0,
    ) -> None:
        self._args = (host, port, api_key, seed)
        self._timeout_s = timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._standin: RunwareStandin | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def standin(self) -> RunwareStandin:
        if self._standin is None:
            raise RuntimeError("the stand-in is not running; call start() first")
        return self._standin

    @property
    def url(self) -> str:
        return self.standin.url

    @property
    def faults(self) -> Faults:
        return self.standin.faults

    @property
    def stats(self) -> Stats:
        return self.standin.stats

    def start(self) -> Self:
        """Serve on a new daemon thread; returns once listening, or raises within the timeout."""
        self._thread = threading.Thread(target=self._run, name="runware-standin", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._timeout_s):
            raise RuntimeError(f"the Runware stand-in did not start within {self._timeout_s}s")
        if self._failure is not None:
            raise RuntimeError("the Runware stand-in failed to start") from self._failure
        return self

    def _run(self) -> None:
        """The thread: start the server on a loop of its own and run that loop until stopped."""
        host, port, api_key, seed = self._args
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._standin = loop.run_until_complete(start(host, port, api_key=api_key, seed=seed))
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Stop the server, then its loop and thread; raises if the thread outlives the timeout."""
        loop, standin, thread = self._loop, self._standin, self._thread
        if loop is None or thread is None or loop.is_closed():
            return
        if standin is not None:
            future = asyncio.run_coroutine_threadsafe(standin.stop(), loop)
            with contextlib.suppress(Exception):
                future.result(self._timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self._timeout_s)
        if thread.is_alive():
            raise RuntimeError(f"the Runware stand-in did not stop within {self._timeout_s}s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m generia_pipelines.local.runware_standin``: serve until interrupted."""
    parser = argparse.ArgumentParser(description=_DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def serve_forever() -> None:
        standin = await start(args.host, args.port, api_key=args.api_key, seed=args.seed)
        standin.faults.set(latency_s=args.latency_ms / 1000)
        print(standin.url, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await standin.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever())
