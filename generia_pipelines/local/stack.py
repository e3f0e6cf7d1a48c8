"""The local Generia stack: four gRPC services and the object store, on real sockets.

:class:`LocalStack` runs in the caller's event loop (the CLI); :class:`ThreadedStack` runs
one in its own thread and loop, for synchronous code and tests. Extra servers (the Runware
stand-in) join through :class:`StackComponent`, so this module does not depend on them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import grpc

from generia_pipelines.local.admin import Admin
from generia_pipelines.local.blobs import BlobStore
from generia_pipelines.local.character_service import CharacterService
from generia_pipelines.local.db import IdempotencyStore
from generia_pipelines.local.faults import FaultInjector
from generia_pipelines.local.interceptor import StackInterceptor
from generia_pipelines.local.media_service import MediaService
from generia_pipelines.local.object_store import HttpServer, ObjectStore
from generia_pipelines.local.post_service import PostService
from generia_pipelines.local.revisions import Revision, enable_reflection, register, served_pool
from generia_pipelines.local.signing import UrlSigner
from generia_pipelines.local.stats import CallStats
from generia_pipelines.local.stores import CharacterStore, MediaStore, PostStore, WorldStore
from generia_pipelines.local.world_service import WorldService

log = logging.getLogger(__name__)

ENV_VARS = {
    "character": "GENERIA_CHARACTER_ADDR",
    "media": "GENERIA_MEDIA_ADDR",
    "post": "GENERIA_POST_ADDR",
    "world": "GENERIA_WORLD_ADDR",
}
STACK_URL_VAR = "GENERIA_STACK_URL"
TOKEN_VAR = "GENERIA_GRPC_TOKEN"


@dataclass
class StackConfig:
    """Where the stack keeps its data and listens; port 0 picks a free port."""

    data_dir: Path
    host: str = "127.0.0.1"
    character_port: int = 0
    media_port: int = 0
    post_port: int = 0
    world_port: int = 0
    http_port: int = 0
    token: str | None = field(default=None, repr=False)
    url_ttl_s: int = 600
    honour_idempotency: bool = True
    hmac_secret: str = field(default="local-stack-secret", repr=False)
    seed: int = 0
    #: The wire contract served: the specification, or the platform's drifted head revision.
    revision: Revision | Path = Revision.SPEC
    #: Serve gRPC server reflection (the platform's Go services do).
    reflection: bool = True
    #: Serve GetPost and GetMedia, which the specification lacks.
    lookups: bool = True


class StackComponent(Protocol):
    """An extra server started after the core services and stopped before them."""

    name: str

    async def start(self, host: str) -> Mapping[str, str]:
        """Start listening; return the environment variables that point at it."""
        ...

    async def stop(self) -> None: ...


class ServerHandle(Protocol):
    """What a stand-in's ``start`` returns."""

    @property
    def url(self) -> str: ...

    async def stop(self) -> None: ...


class ServerComponent:
    """Adapts a stand-in exposing ``async start(host, port) -> handle`` (``.url``, ``.stop()``).

    ``ServerComponent("runware", runware_standin.start, "RUNWARE_URL")`` adds the Runware
    stand-in to the stack and its URL to ``stack.env``.
    """

    def __init__(
        self,
        name: str,
        start: Callable[[str, int], Awaitable[ServerHandle]],
        env_var: str,
        port: int = 0,
    ) -> None:
        self.name = name
        self._start = start
        self._env_var = env_var
        self._port = port
        self._handle: ServerHandle | None = None

    @property
    def handle(self) -> ServerHandle | None:
        """The running server (e.g. to reach the stand-in's own fault settings)."""
        return self._handle

    async def start(self, host: str) -> Mapping[str, str]:
        self._handle = await self._start(host, self._port)
        return {self._env_var: self._handle.url}

    async def stop(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            await handle.stop()


def _advertised_host(host: str) -> str:
    """A wildcard bind address is not dialable: advertise loopback instead."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class LocalStack:
    """The stack in the current event loop: ``await start()``, use ``env``, ``await stop()``."""

    def __init__(self, config: StackConfig, components: Sequence[StackComponent] = ()) -> None:
        self.config = config
        self.faults = FaultInjector(config.seed)
        self.stats = CallStats()
        self._components = list(components)
        self._started_components: list[StackComponent] = []
        self._servers: list[grpc.aio.Server] = []
        self._http: HttpServer | None = None
        self._stores: list[CharacterStore | MediaStore | PostStore | WorldStore] = []
        self._ports: dict[str, int] = {}
        self._component_env: dict[str, str] = {}
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    @property
    def http_url(self) -> str:
        """Base URL of the object store and admin endpoints."""
        self._require_running()
        host = _host_port(_advertised_host(self.config.host), self._ports["http"])
        return f"http://{host}"

    @property
    def env(self) -> dict[str, str]:
        """The variables that point the pipeline's clients at this stack."""
        self._require_running()
        host = _advertised_host(self.config.host)
        env = {var: _host_port(host, self._ports[name]) for name, var in ENV_VARS.items()}
        env[STACK_URL_VAR] = self.http_url
        if self.config.token:
            env[TOKEN_VAR] = self.config.token
        env.update(self._component_env)
        return env

    @property
    def ports(self) -> dict[str, int]:
        """Bound ports by name: character, media, post, world, http."""
        self._require_running()
        return dict(self._ports)

    def _require_running(self) -> None:
        if not self._running:
            raise RuntimeError("the local stack is not running; call start() first")

    async def start(self) -> None:
        """Open the stores and bind every server; on any failure, undo what was started."""
        if self._running:
            raise RuntimeError("the local stack is already running")
        try:
            await self._start()
        except BaseException:
            await self._shutdown()
            raise
        self._running = True
        log.info("local Generia stack up: %s", self.env)

    def _open_stores(self) -> tuple[CharacterStore, MediaStore, PostStore, WorldStore, BlobStore]:
        """One SQLite file per service under the data directory, and the objects directory."""
        data = Path(self.config.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        characters = CharacterStore(data / "character.db")
        self._stores.append(characters)
        media = MediaStore(data / "media.db")
        self._stores.append(media)
        posts = PostStore(data / "post.db")
        self._stores.append(posts)
        worlds = WorldStore(data / "world.db")
        self._stores.append(worlds)
        return characters, media, posts, worlds, BlobStore(data / "objects")

    async def _start(self) -> None:
        cfg = self.config
        characters, media, posts, worlds, blobs = self._open_stores()
        signer = UrlSigner(cfg.hmac_secret)

        object_store = ObjectStore(
            media=media, blobs=blobs, signer=signer, faults=self.faults, stats=self.stats
        )
        admin = Admin(
            characters=characters,
            media=media,
            posts=posts,
            worlds=worlds,
            faults=self.faults,
            stats=self.stats,
            token=cfg.token,
            public_url=lambda: self.http_url,
        )
        self._http = HttpServer([*object_store.routes(), *admin.routes()])
        self._ports["http"] = await self._http.start(cfg.host, cfg.http_port)
        public_url = f"http://{_host_port(_advertised_host(cfg.host), self._ports['http'])}"

        pool = served_pool(cfg.revision, lookups=cfg.lookups)
        confirm_fields = pool.FindMessageTypeByName("media.ConfirmUploadRequest").fields_by_name
        services: list[tuple[str, Any, str, int, Any]] = [
            (
                "character",
                CharacterService(characters, media),
                "generia.character.CharacterService",
                cfg.character_port,
                characters.db,
            ),
            (
                "media",
                MediaService(
                    media=media,
                    characters=characters,
                    blobs=blobs,
                    signer=signer,
                    faults=self.faults,
                    public_url=public_url,
                    url_ttl_s=cfg.url_ttl_s,
                    confirm_names_owner="character_id" in confirm_fields,
                ),
                "media.MediaService",
                cfg.media_port,
                media.db,
            ),
            (
                "post",
                PostService(posts=posts, characters=characters, media=media, public_url=public_url),
                "post.PostService",
                cfg.post_port,
                posts.db,
            ),
            (
                "world",
                WorldService(worlds=worlds, media=media, public_url=public_url),
                "world.WorldService",
                cfg.world_port,
                worlds.db,
            ),
        ]
        for name, servicer, service_name, port, db in services:
            interceptor = StackInterceptor(
                faults=self.faults,
                stats=self.stats,
                idempotency=IdempotencyStore(db),
                token=cfg.token,
                honour_idempotency=cfg.honour_idempotency,
            )
            # No SO_REUSEPORT: a second stack on a fixed port must fail, not share it.
            server = grpc.aio.server(interceptors=[interceptor], options=[("grpc.so_reuseport", 0)])
            served = pool.FindServiceByName(service_name)
            register(server, servicer, served)
            if cfg.reflection:
                enable_reflection(server, served)
            try:
                bound = server.add_insecure_port(_host_port(cfg.host, port))
            except RuntimeError as exc:
                raise OSError(
                    f"cannot bind the {name} service to {cfg.host}:{port}: {exc}"
                ) from exc
            if bound == 0:
                raise OSError(f"cannot bind the {name} service to {cfg.host}:{port}")
            await server.start()
            self._servers.append(server)
            self._ports[name] = bound

        for component in self._components:
            env = await component.start(cfg.host)
            self._started_components.append(component)
            self._component_env.update(env)

    async def stop(self) -> None:
        """Stop components, then the gRPC servers (1 s grace), the HTTP server, the stores."""
        self._running = False
        await self._shutdown()

    async def _shutdown(self) -> None:
        for component in reversed(self._started_components):
            try:
                await asyncio.wait_for(component.stop(), timeout=5.0)
            except Exception:
                log.exception("stopping stack component %s failed", component.name)
        self._started_components.clear()
        self._component_env.clear()
        servers, self._servers = self._servers, []
        if servers:
            await asyncio.gather(*(server.stop(1.0) for server in servers), return_exceptions=True)
        if self._http is not None:
            http, self._http = self._http, None
            await http.stop()
        for store in self._stores:
            store.close()
        self._stores.clear()
        self._ports.clear()


class ThreadedStack:
    """A :class:`LocalStack` in its own thread and event loop; a context manager.

    ``faults`` and ``stats`` are thread-safe, so a test thread can inject faults while the
    stack serves.
    """

    def __init__(self, config: StackConfig, components: Sequence[StackComponent] = ()) -> None:
        self.config = config
        self.stack = LocalStack(config, components)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_timeout_s = 10.0

    @property
    def faults(self) -> FaultInjector:
        return self.stack.faults

    @property
    def stats(self) -> CallStats:
        return self.stack.stats

    @property
    def env(self) -> dict[str, str]:
        return self.stack.env

    @property
    def http_url(self) -> str:
        return self.stack.http_url

    def start(self, timeout_s: float = 10.0) -> ThreadedStack:
        """Start the thread and wait, at most ``timeout_s``, until every port accepts."""
        if self._thread is not None:
            raise RuntimeError("the threaded stack is already started")
        deadline = time.monotonic() + timeout_s
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop, started), name="generia-local-stack", daemon=True
        )
        self._thread.start()
        try:
            started.result(timeout=timeout_s)
            self._wait_for_ports(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _run(
        self, loop: asyncio.AbstractEventLoop, started: concurrent.futures.Future[None]
    ) -> None:
        """The stack's thread: start, serve until ``loop.stop()``, then stop the stack here."""
        asyncio.set_event_loop(loop)
        try:
            task = loop.create_task(self.stack.start())
            try:
                loop.run_until_complete(task)
            except BaseException as exc:
                if not task.done():  # stopped while starting: let start() undo itself
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        loop.run_until_complete(task)
                if not started.done():
                    started.set_exception(exc)
                return
            started.set_result(None)
            loop.run_forever()
            try:
                loop.run_until_complete(asyncio.wait_for(self.stack.stop(), self._stop_timeout_s))
            except Exception:
                log.exception("stopping the local stack failed")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def _wait_for_ports(self, deadline: float) -> None:
        host = _advertised_host(self.config.host)
        for name, port in self.stack.ports.items():
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the {name} port {port} does not accept connections")
                try:
                    with socket.create_connection((host, port), timeout=min(remaining, 1.0)):
                        break
                except OSError:
                    time.sleep(0.02)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the stack and its thread, waiting at most about ``timeout_s``."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._stop_timeout_s = timeout_s
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=timeout_s + 1.0)
        if thread.is_alive():
            log.warning("the local stack thread is still alive after %.1f s", timeout_s)
        self._loop = None
        self._thread = None

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
