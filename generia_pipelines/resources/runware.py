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
    DEFAULT_IMAGE_MODEL,
    DEFAULT_IMAGE_USD,
    DEFAULT_NEGATIVE_PROMPT,
    DEFAULT_RUNWARE_URL,
    OutputFormat,
    OutputType,
    RunwareImages,
    RunwareSettings,
    RunwareUnavailable,
    parse_usd,
)
from generia_pipelines.settings_env import parse_flag

log = logging.getLogger(__name__)


class RunwareResource(ConfigurableResource):
    """Runware images for assets: ``await runware.images().run_task(task_uuid, prompt, seed=...)``.

    Write the taskUUID to the ledger before ``run_task``; a re-run with it never pays twice.
    """

    api_key: str = Field(
        repr=False,
        description="Runware API key; wire it as EnvVar('RUNWARE_API_KEY') so it is never shown",
    )
    url: str = Field(default=DEFAULT_RUNWARE_URL, description="WebSocket URL (RUNWARE_URL)")
    image_model: str = Field(
        default=DEFAULT_IMAGE_MODEL, description="Model AIR id (RUNWARE_IMAGE_MODEL)"
    )
    enhance_prompt: bool = Field(
        default=False,
        description="Run promptEnhance before imageInference (RUNWARE_ENHANCE_PROMPT)",
    )
    width: int = Field(default=512, description="Multiple of 64 within 128..2048")
    height: int = Field(default=512, description="Multiple of 64 within 128..2048")
    negative_prompt: str = Field(default=DEFAULT_NEGATIVE_PROMPT)
    output_format: str = Field(default="PNG", description="PNG, JPG or WEBP")
    output_type: str = Field(
        default="base64Data", description="How bytes travel: base64Data, dataURI or URL"
    )
    check_content: bool = Field(default=True, description="Ask Runware to flag NSFW results")
    concurrency: int = Field(default=10, description="Image calls in flight per run")
    connect_timeout_s: float = Field(default=20.0, description="Bound on connect + auth")
    request_timeout_s: float = Field(default=120.0, description="Bound on one imageInference")
    enhance_timeout_s: float = Field(default=60.0, description="Bound on one promptEnhance")
    download_timeout_s: float = Field(default=30.0, description="Bound on one imageURL download")
    max_attempts: int = Field(default=4, description="Tries per call for transient failures")
    backoff_initial_s: float = Field(default=0.5)
    backoff_max_s: float = Field(default=8.0)
    image_usd: float = Field(
        default=DEFAULT_IMAGE_USD,
        description="List price of one image in USD, charged when Runware reports no cost "
        "(RUNWARE_IMAGE_USD)",
    )
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
        values: dict[str, Any] = {
            "api_key": EnvVar("RUNWARE_API_KEY"),
            "url": os.environ.get("RUNWARE_URL") or DEFAULT_RUNWARE_URL,
            "image_model": os.environ.get("RUNWARE_IMAGE_MODEL") or DEFAULT_IMAGE_MODEL,
            "enhance_prompt": parse_flag(
                "RUNWARE_ENHANCE_PROMPT", os.environ.get("RUNWARE_ENHANCE_PROMPT", "false")
            ),
            "image_usd": parse_usd(os.environ.get("RUNWARE_IMAGE_USD"), "RUNWARE_IMAGE_USD"),
        }
        values.update(overrides)
        return cls(**values)

    def settings(self) -> RunwareSettings:
        """The validated client settings (raises ConfigError naming the bad setting)."""
        settings = RunwareSettings(
            api_key=self.api_key,
            url=self.url,
            model=self.image_model,
            enhance_prompt=self.enhance_prompt,
            width=self.width,
            height=self.height,
            negative_prompt=self.negative_prompt,
            output_format=_as_format(self.output_format),
            output_type=_as_type(self.output_type),
            check_content=self.check_content,
            concurrency=self.concurrency,
            connect_timeout_s=self.connect_timeout_s,
            request_timeout_s=self.request_timeout_s,
            enhance_timeout_s=self.enhance_timeout_s,
            download_timeout_s=self.download_timeout_s,
            max_attempts=self.max_attempts,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
            image_usd=self.image_usd,
        )
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


def _as_format(value: str) -> OutputFormat:
    upper = value.strip().upper()
    if upper == "JPEG":
        upper = "JPG"
    return upper  # type: ignore[return-value]  # checked by RunwareSettings.validate


def _as_type(value: str) -> OutputType:
    return value.strip()  # type: ignore[return-value]  # checked by RunwareSettings.validate
