"""``RunwareImages``: validated images on one event loop with one SDK client.

Here live the traps of the calls themselves (see the package docstring): a fresh request per
call, one instance per event loop, one image per task, ``promptEnhance``'s set sorted; and
:meth:`RunwareImages.run_task`, which resumes a task by its taskUUID so it never pays twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Self

import httpx

from generia_pipelines.aio import AsyncClosing
from generia_pipelines.clients.runware.connection import RunwareConnection
from generia_pipelines.clients.runware.errors import (
    RunwareError,
    RunwareInvalidImage,
    RunwareNSFWError,
    RunwareRequestError,
    RunwareUnavailable,
    lookup_failed,
)
from generia_pipelines.clients.runware.images import GeneratedImage, check_image, image_bytes
from generia_pipelines.clients.runware.inputs import canonical_uuid, checked_request
from generia_pipelines.clients.runware.redaction import remember_secret
from generia_pipelines.clients.runware.regeneration import Regeneration
from generia_pipelines.clients.runware.retries import with_retries
from generia_pipelines.clients.runware.sdk import SDK_CAP_VARIABLE, runware_sdk, sdk_in_flight_cap
from generia_pipelines.clients.runware.settings import MAX_SEED, RunwareSettings

# The package's logger, as before it was split: handlers attach to it by that name.
log = logging.getLogger(__package__)


@dataclass
class _Inference:
    """One image task's result, before it becomes a :class:`GeneratedImage`."""

    data: bytes
    seed: int
    cost: float | None
    nsfw: bool
    task_uuid: str
    image_uuid: str
    resumed: bool = False


class RunwareImages(AsyncClosing):
    """Generates validated images on one event loop with one SDK client.

    Use ``async with RunwareImages(settings) as images: await images.run_task(uuid, ...)``
    (resumable, one task per taskUUID) or ``generate(...)`` (fresh taskUUIDs, regenerates).
    Calls are capped at ``settings.concurrency``; each is bounded by a timeout and
    retried with backoff when the failure is transient.
    """

    def __init__(self, settings: RunwareSettings) -> None:
        settings.validate()
        self.settings = settings
        self.images_generated = 0
        self.cost_usd = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._connection = RunwareConnection(settings, guard=self._bind)
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        remember_secret(settings.api_key)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._connection.is_open else "idle")
        return (
            f"RunwareImages(url={self.settings.url!r}, model={self.settings.image_model!r}, "
            f"{self.settings.width}x{self.settings.height} {self.settings.output_format}, {state})"
        )

    async def open(self) -> Self:
        await self.connect()
        return self

    async def aclose(self) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this instance is bound to (set on first use)."""
        return self._loop

    def _bind(self) -> asyncio.Semaphore:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; open a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.settings.concurrency)
            cap = sdk_in_flight_cap()
            if cap < self.settings.concurrency:
                log.warning(
                    "runware was imported with %s=%d, below concurrency=%d: the SDK caps it",
                    SDK_CAP_VARIABLE,
                    cap,
                    self.settings.concurrency,
                )
        elif self._loop is not loop:
            raise RuntimeError(
                "RunwareImages is bound to the event loop it was first used on; the SDK's "
                "semaphore cannot cross loops, so create one instance per event loop"
            )
        assert self._semaphore is not None
        return self._semaphore

    async def connect(self) -> None:
        """Open and authenticate the connection now (setup errors surface here)."""
        await self._connection.connect()

    async def close(self) -> None:
        """Disconnect (bounded); the instance cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        await self._connection.close()
        if self._http is not None:
            http, self._http = self._http, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(http.aclose(), self.settings.close_timeout_s)

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.settings.download_timeout_s, follow_redirects=True
            )
        return self._http

    # -- prompt enhancement -------------------------------------------------------------

    async def enhance(self, prompt: str) -> tuple[str, float | None]:
        """``promptEnhance``: one enhanced text, chosen deterministically, and its cost."""
        return await with_retries(
            self.settings, "promptEnhance", functools.partial(self._enhance_once, prompt)
        )

    async def _enhance_once(self, prompt: str) -> tuple[str, float | None]:
        sdk = runware_sdk()
        settings = self.settings
        request = sdk.IPromptEnhance(
            prompt=prompt,
            promptMaxLength=settings.enhance_max_length,
            promptVersions=settings.enhance_versions,
            includeCost=True,
        )
        results = await self._connection.call(
            "promptEnhance",
            lambda client: client.promptEnhance(request),
            settings.enhance_timeout_s,
            lambda: request.taskUUID,
        )
        texts = sorted(
            {r.text.strip() for r in results if getattr(r, "text", None) and r.text.strip()}
        )
        if not texts:
            raise RunwareUnavailable(
                "Runware promptEnhance returned no text", task_uuid=request.taskUUID
            )
        costs = [float(r.cost) for r in results if getattr(r, "cost", None) is not None]
        cost = sum(costs) if costs else None
        if cost:
            self.cost_usd += cost
        return texts[0], cost

    async def _enhanced(self, text: str) -> tuple[str | None, float | None]:
        if not self.settings.enhance_prompt:
            return None, None
        return await self.enhance(text)

    # -- image inference ----------------------------------------------------------------

    async def run_task(
        self,
        task_uuid: str,
        prompt: str,
        *,
        seed: int,
        width: int | None = None,
        height: int | None = None,
        negative_prompt: str | None = None,
    ) -> GeneratedImage:
        """Exactly one Runware image task, under the caller's ``task_uuid``.

        Write ``task_uuid`` down before calling: calling again with it (after a crash, a
        timeout, a lost answer) never pays twice. Transient failures are retried with the
        same taskUUID; when Runware answers ``conflictTaskUUID`` (the task was submitted
        before) the result already billed is fetched with ``getResponse`` and returned with
        ``resumed=True``. Nothing is regenerated here: an NSFW flag raises
        :class:`RunwareNSFWError`, an unusable result :class:`RunwareInvalidImage` (both
        ``billed=True``, with the cost reported). The prompt is enhanced first when
        ``enhance_prompt`` is on (a separate, fresh task).
        """
        canonical = canonical_uuid(task_uuid)
        text, checked_seed, width, height, negative = checked_request(
            self.settings, prompt, seed, width, height, negative_prompt
        )
        if checked_seed is None:
            raise RunwareRequestError(f"seed={seed!r} must be within 1..{MAX_SEED}")
        semaphore = self._bind()
        async with semaphore:
            enhanced, enhance_cost = await self._enhanced(text)
            try:
                image = await self._run_task_unlocked(
                    canonical, text, enhanced, checked_seed, width, height, negative
                )
            except RunwareError as exc:
                exc.enhance_cost_usd = enhance_cost
                raise
            self.images_generated += 0 if image.resumed else 1
            return dataclasses.replace(image, enhance_cost_usd=enhance_cost)

    async def generate(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        width: int | None = None,
        height: int | None = None,
        negative_prompt: str | None = None,
    ) -> GeneratedImage:
        """One image for ``prompt`` under fresh taskUUIDs (not resumable: use ``run_task``).

        Enhanced first when configured, validated before return. A result flagged NSFW is
        regenerated once with a seed derived from the first (a second flag raises
        :class:`RunwareNSFWError`); an unusable result is regenerated up to ``max_attempts``
        times. ``paid_usd`` of an error is everything billed anyway (discarded images and
        the enhancement).
        """
        text, checked_seed, width, height, negative = checked_request(
            self.settings, prompt, seed, width, height, negative_prompt
        )
        seed = secrets.randbelow(MAX_SEED) + 1 if checked_seed is None else checked_seed
        semaphore = self._bind()

        async with semaphore:
            enhanced, enhance_cost = await self._enhanced(text)
            tried = Regeneration(seed, enhance_cost, self.settings.max_attempts)
            while True:
                try:
                    image = await self._run_task_unlocked(
                        str(uuid.uuid4()), text, enhanced, tried.seed, width, height, negative
                    )
                except (RunwareNSFWError, RunwareInvalidImage) as exc:
                    if tried.draws_again(exc):
                        continue
                    raise
                except RunwareError as exc:
                    # Billed although nothing usable came of it: the caller records it.
                    tried.charge(exc)
                    raise
                self.images_generated += 1
                return dataclasses.replace(
                    image,
                    enhance_cost_usd=enhance_cost,
                    discarded_cost_usd=tried.discarded,
                    regenerated_for_nsfw=tried.nsfw_rounds > 0,
                )

    async def _run_task_unlocked(
        self,
        task_uuid: str,
        text: str,
        enhanced: str | None,
        seed: int,
        width: int,
        height: int,
        negative: str,
    ) -> GeneratedImage:
        settings = self.settings
        result = await with_retries(
            settings,
            "imageInference",
            functools.partial(
                self._task_once, task_uuid, enhanced or text, negative, seed, width, height
            ),
        )
        return GeneratedImage(
            data=result.data,
            content_type=settings.content_type,
            extension=settings.extension,
            width=width,
            height=height,
            seed=result.seed,
            cost_usd=result.cost,
            prompt=text,
            enhanced_prompt=enhanced,
            task_uuid=result.task_uuid,
            model=settings.image_model,
            image_uuid=result.image_uuid,
            resumed=result.resumed,
        )

    async def _task_once(
        self, task_uuid: str, prompt: str, negative: str, seed: int, width: int, height: int
    ) -> _Inference:
        """One attempt of the task: submit it, or fetch its result when it was submitted."""
        sdk = runware_sdk()
        settings = self.settings
        # Fresh per call: the SDK writes its taskUUID into the request object.
        request = sdk.IImageInference(
            taskUUID=task_uuid,
            model=settings.image_model,
            positivePrompt=prompt,
            negativePrompt=negative or None,
            width=width,
            height=height,
            seed=seed,
            numberResults=1,
            outputType=settings.output_type,
            outputFormat=settings.output_format,
            includeCost=True,
            safety=sdk.ISafety(checkContent=True) if settings.check_content else None,
        )

        async def submit(client: Any) -> tuple[Any, bool]:
            images = await client.imageInference(request)
            # The SDK resolves a conflict on its own resend by polling getResponse itself.
            polled: set[str] = getattr(client, "polled_task_uuids", set())
            resumed = task_uuid in polled
            polled.discard(task_uuid)
            return images, resumed

        try:
            images, resumed = await self._connection.call(
                "imageInference", submit, settings.request_timeout_s, lambda: task_uuid
            )
        except RunwareError as exc:
            if exc.code != "conflictTaskUUID":
                raise
            # Submitted before (a crash, a timeout, a lost answer): fetch what was billed.
            log.info("Runware task %s was submitted before; fetching its result", task_uuid)
            images, resumed = await self._fetch_response(task_uuid), True
        if not isinstance(images, list) or not images:
            raise RunwareUnavailable("Runware returned no image", task_uuid=task_uuid)
        return await self._inference(images[0], task_uuid, seed, width, height, resumed)

    async def _fetch_response(self, task_uuid: str) -> list[Any]:
        """``getResponse(taskUUID)``: the task's result, polled while it is processing."""

        async def fetch(client: Any) -> Any:
            try:
                return await client.getResponse(taskUUID=task_uuid, numberResults=1)
            finally:
                getattr(client, "polled_task_uuids", set()).discard(task_uuid)

        try:
            results = await self._connection.call(
                "getResponse", fetch, self.settings.request_timeout_s, lambda: task_uuid
            )
        except RunwareRequestError as exc:
            # The lookup failed (taskType getResponse) or the task itself had failed: the
            # same taskUUID would conflict again, so no retry under it.
            exc.detail = f"fetching the result of a resubmitted task failed: {exc.detail}"
            exc.billed = None if lookup_failed(exc) else False
            raise
        except RunwareUnavailable as exc:
            if exc.billed is False and exc.code:  # the task's own failure, reported again
                exc.retryable = False
            exc.detail = f"fetching the result of a resubmitted task failed: {exc.detail}"
            raise
        return list(results or [])

    async def _inference(
        self, image: Any, task_uuid: str, seed: int, width: int, height: int, resumed: bool
    ) -> _Inference:
        settings = self.settings
        answered_uuid = str(getattr(image, "taskUUID", None) or task_uuid)
        cost = float(image.cost) if getattr(image, "cost", None) is not None else None
        if cost and not resumed:
            self.cost_usd += cost
        result = _Inference(
            data=b"",
            seed=int(getattr(image, "seed", None) or seed),
            cost=cost,
            nsfw=bool(getattr(image, "NSFWContent", False)),
            task_uuid=answered_uuid,
            image_uuid=str(getattr(image, "imageUUID", "") or ""),
            resumed=resumed,
        )
        if result.nsfw:
            raise RunwareNSFWError(
                f"Runware flagged the image (seed {result.seed}) as NSFW; not using it",
                task_uuid=answered_uuid,
                paid_usd=cost,
            )
        try:
            result.data = await image_bytes(image, answered_uuid, settings, self._http_client)
            await asyncio.to_thread(check_image, result.data, settings.output_format, width, height)
        except RunwareInvalidImage as exc:
            exc.task_uuid = exc.task_uuid or answered_uuid
            exc.billed = True
            exc.paid_usd = cost
            raise
        return result
