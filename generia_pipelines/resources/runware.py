"""Dagster resource for Runware image generation.

Configuration and lifecycle only; the SDK handling lives in
:mod:`generia_pipelines.clients.runware`. The SDK's client binds to one event loop, so the
resource hands out one :class:`RunwareImages` per running loop (:meth:`RunwareResource.images`)
and, inside a run, connects it on Dagster's loop at setup (a bad key fails the step before
any asset code runs) and closes it when the run ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field, PrivateAttr

from generia_pipelines.clients.runware import (
    API_KEY_VARIABLE,
    RunwareImages,
    RunwareOptions,
    RunwareSettings,
    RunwareUnavailable,
    runware_environment,
)

log = logging.getLogger(__name__)


class RunwareResource(ConfigurableResource, RunwareOptions):
    """Runware images for assets: ``await runware.images().run_task(task_uuid, prompt, seed=...)``.

    Write the taskUUID to the ledger before ``run_task``; a re-run with it never pays twice.
    The configuration is :class:`RunwareOptions`' fields, declared there for the client too.
    """

    connect_on_setup: bool = Field(
        default=True, description="Connect when the run starts, so a bad key fails early"
    )

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RunwareImages] = PrivateAttr(
        default_factory=weakref.WeakKeyDictionary
    )
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_env(cls, **overrides: Any) -> RunwareResource:
        """The resource as deployed: the key through ``EnvVar``, the rest from ``RUNWARE_*``."""
        values = {"api_key": EnvVar(API_KEY_VARIABLE), **runware_environment(os.environ)}
        return cls(**{**values, **overrides})

    def settings(self) -> RunwareSettings:
        """The validated client settings (raises ConfigError naming the bad setting)."""
        chosen = {name: getattr(self, name) for name in RunwareOptions.model_fields}
        chosen["output_format"] = _as_format(self.output_format)
        chosen["output_type"] = self.output_type.strip()
        settings = RunwareSettings(**chosen)
        settings.validate()
        return settings

    def images(self) -> RunwareImages:
        """The generator bound to the running event loop (created on first use)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "RunwareResource.images() needs a running event loop: call it from an async asset"
            ) from None
        with self._lock:
            images = self._by_loop.get(loop)
            if images is None or images.closed:
                images = RunwareImages(self.settings())
                self._by_loop[loop] = images
            return images

    async def aclose(self) -> None:
        """Close the generator of the running loop, if any (others belong to their loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            images = self._by_loop.pop(loop, None)
        if images is not None:
            await images.close()

    @asynccontextmanager
    async def yield_for_execution(  # type: ignore[override]
        self, context: InitResourceContext
    ) -> AsyncIterator[RunwareResource]:
        """Validate (and connect) on Dagster's run loop; disconnect when the run ends.

        A rejected key fails the run here. A transient failure to connect does not: it is
        no setup error, and a failed resource fails the whole run with no step retry, so the
        calls connect on demand instead, with their own retries.
        """
        self.settings()
        if self.connect_on_setup:
            try:
                await self.images().connect()
            except RunwareUnavailable as exc:
                (context.log or log).warning(
                    f"Runware not reachable at setup, connecting on first use: {exc}"
                )
        try:
            yield self
        finally:
            await self.aclose()


def _as_format(value: str) -> str:
    """The output format as Runware names it (``jpeg`` is ``JPG``); checked by validate."""
    upper = value.strip().upper()
    return "JPG" if upper == "JPEG" else upper
