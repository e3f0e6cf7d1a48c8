"""Paid calls with an intent first: reserve, call, then settle at the real cost or release.

For an image the reservation's id *is* the Runware ``taskUUID``, written to the ledger
before the request is sent. A run that dies after sending leaves the reservation open; the
next run takes it over and resubmits the same ``taskUUID``, and Runware answers with the
image it already billed (``conflictTaskUUID`` → ``getResponse``), never a second one. No
durable intent, no call: if the ledger cannot be written, nothing is sent.

A :class:`ProviderGate` per step stops further calls after an outage, or after a few
unusable results in a row, so a broken provider costs seconds and no money, and the
step's failure names what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from generia_pipelines.budget import Budget
from generia_pipelines.clients.runware import (
    GeneratedImage,
    RunwareError,
    RunwareInvalidImage,
    RunwareNSFWError,
    RunwareUnavailable,
)
from generia_pipelines.clients.text.base import TextResult, TextTask
from generia_pipelines.clients.text.errors import InvalidOutputError, TextProviderError
from generia_pipelines.generation.prompts import Prompt
from generia_pipelines.ledger import Ledger, Reservation, StoredImage, Unit
from generia_pipelines.units.causes import ProviderDown, TooManyInvalid
from generia_pipelines.units.session import ClaimSession
from generia_pipelines.units.spend import PaidKind

T = TypeVar("T", bound=BaseModel)
log = logging.getLogger(__name__)

#: Paid image tasks per unit and run: the first, and one more after an unusable result.
IMAGE_TASKS_PER_UNIT = 2
#: Unusable images in a row, across the step, after which it stops paying for more.
INVALID_IN_A_ROW = 3
_MAX_SEED = 2**31 - 1


#: What a unit stores of its text: the ledger payload, and the post's author if any.
TextRecord = tuple[dict[str, Any], str | None]


class ImageProvider(Protocol):
    async def run_task(self, task_uuid: str, prompt: str, *, seed: int) -> GeneratedImage: ...


class TextProvider(Protocol):
    async def generate(self, task: TextTask[T]) -> TextResult[T]: ...


@dataclass
class ProviderGate:
    """Per step: whether a provider may still be called, and why not.

    Until one usable image has come back, image tasks go one at a time (a slow start):
    a provider that is down, or that answers with garbage, then costs one call, or
    ``invalid_limit`` billed images, instead of every task in flight at once; a budget
    derived with its margin is then still enough to finish the world once it is fixed.
    """

    name: str = "Runware"
    invalid_limit: int = INVALID_IN_A_ROW
    down: str | None = None
    invalid_in_a_row: int = 0
    last_invalid: str = ""
    unpriced: int = 0
    proven: bool = False
    _probing: bool = False
    _changed: asyncio.Condition | None = None

    def check(self) -> None:
        if self.down is not None:
            raise ProviderDown(self.down)
        if self.invalid_in_a_row >= self.invalid_limit:
            raise TooManyInvalid(self.invalid_cause())

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold while making one task: alone until the provider proved itself, then freely."""
        if self.proven:
            yield
            return
        if self._changed is None:
            self._changed = asyncio.Condition()
        changed = self._changed
        async with changed:
            while not self.proven and self._probing:
                await changed.wait()
            probe = not self.proven
            self._probing = self._probing or probe
        try:
            yield
        finally:
            if probe:
                async with changed:
                    self._probing = False
                    changed.notify_all()

    def invalid_cause(self) -> str:
        return (
            f"{self.name} returned {self.invalid_limit} unusable images in a row, the last: "
            f"{self.last_invalid}; stopped paying for more"
        )

    def outage(self, error: RunwareError) -> None:
        self.down = self.down or error.detail

    def invalid(self, error: RunwareError) -> None:
        self.invalid_in_a_row += 1
        self.last_invalid = error.detail

    def usable(self) -> None:
        self.invalid_in_a_row = 0
        self.proven = True


def _derived_seed(seed: int, task_number: int) -> int:
    return (seed + 7919 * task_number - 1) % _MAX_SEED + 1


@dataclass
class PaidCalls:
    """One world's paid calls for one period, each reserved against its budget first."""

    ledger: Ledger
    claims: ClaimSession
    world_id: str
    period: str
    budget: Budget
    image_usd: float
    text_usd: float
    gate: ProviderGate = field(default_factory=ProviderGate)
    logger: Any = None
    images_fetched: int = 0

    @property
    def log(self) -> Any:
        return self.logger or log

    async def text(
        self,
        key: str,
        schema: type[T],
        prompt: Prompt,
        provider: TextProvider,
        record: Callable[[T], TextRecord] | None = None,
    ) -> tuple[T, Unit | None]:
        """One text call of unit ``key``: reserved, then charged at its reported cost, or
        given back when the provider provably did not bill it. With ``record``, the text
        (``record(value)``: payload and author) is stored in the write that charges it, and
        the unit is returned as recorded."""
        reservation = self._reserve(key, "text")
        try:
            result = await provider.generate(TextTask(schema, prompt, self.world_id, key))
        except InvalidOutputError as error:  # the rejected replies were billed
            cost = error.usage.cost_usd if error.usage and error.usage.cost_usd else 0.0
            self.ledger.settle(reservation.reservation_id, cost)
            raise
        except TextProviderError as error:
            unbilled = error.status is None or error.status == 429 or error.status >= 500
            if unbilled:
                self.ledger.release(reservation.reservation_id, str(error))
            else:
                self.ledger.settle(reservation.reservation_id, 0.0)
            raise
        # Any other failure: outcome unknown, the reservation lapses with this run's leases.
        cost = result.usage.cost_usd or 0.0
        if record is None:
            self.ledger.settle(reservation.reservation_id, cost)
            return result.value, None
        payload, author = record(result.value)
        unit = self.ledger.record_paid_text(
            key, payload, reservation.reservation_id, cost, character_id=author
        )
        return result.value, unit

    async def image(
        self, key: str, prompt: str, seed: int, meta: Mapping[str, Any], provider: ImageProvider
    ) -> StoredImage:
        """The unit's image, paid at most once per task: an open intent of an earlier run
        is resubmitted under its ``taskUUID``; an unusable result is paid and retried once."""
        last: RunwareError | None = None
        for task_number in range(IMAGE_TASKS_PER_UNIT):
            async with self.gate.slot():
                outcome = await self._image_task(key, prompt, seed, meta, provider, task_number)
            if isinstance(outcome, RunwareError):
                last = outcome
                continue
            return outcome
        if last is None:  # pragma: no cover - the loop returns or records a failure
            raise RuntimeError(f"{key}: no image task was made")
        if self.gate.invalid_in_a_row >= self.gate.invalid_limit:
            raise TooManyInvalid(self.gate.invalid_cause()) from last
        raise last

    async def _image_task(
        self,
        key: str,
        prompt: str,
        seed: int,
        meta: Mapping[str, Any],
        provider: ImageProvider,
        task_number: int,
    ) -> StoredImage | RunwareError:
        """One paid image task of the unit: the stored image, or the billed unusable result
        (the caller may try once more); any other failure is raised."""
        self.gate.check()
        reservation = self._reserve(key, "image")
        task_seed = _derived_seed(seed, task_number)
        try:
            image = await provider.run_task(reservation.reservation_id, prompt, seed=task_seed)
        except RunwareError as error:
            self._settle_failure(key, reservation.reservation_id, error)
            if isinstance(error, (RunwareInvalidImage, RunwareNSFWError)):
                self.gate.invalid(error)
                self.log.warning(f"{key}: unusable image from Runware, {error}")
                return error
            if isinstance(error, RunwareUnavailable):
                self.gate.outage(error)
            raise
        self.gate.usable()
        if image.resumed:
            self.images_fetched += 1
        cost = image.total_cost_usd
        if cost is None:
            cost = self.image_usd
            self.gate.unpriced += 1
            if self.gate.unpriced == 1:
                self.log.warning(
                    f"Runware reported no cost for {key}'s image: charged at the list "
                    f"price USD {self.image_usd} (RUNWARE_IMAGE_USD)"
                )
        info = {**meta, **_image_meta(image)}
        recorded = self.ledger.record_paid_image(
            key, image.data, info, reservation.reservation_id, cost
        )
        if recorded.image is None:  # pragma: no cover - just written
            raise RuntimeError(f"{key}: the image just recorded is missing")
        if recorded.image.sha256 == hashlib.sha256(image.data).hexdigest():
            return StoredImage(image.data, recorded.image)
        kept = self.ledger.load_image(key)  # another writer's image was kept: use that
        if kept is None:  # pragma: no cover - the unit has an image
            raise RuntimeError(f"{key}: the image recorded first is missing")
        return kept

    def _reserve(self, key: str, kind: PaidKind) -> Reservation:
        """The intent of one paid call of ``key``, under this run's lease on it. An image
        resumes the unit's open intent (its taskUUID), if an earlier run left one."""
        self.claims.ensure(key)
        return self.ledger.reserve(
            key,
            self.budget,
            holder=self.claims.holder.token,
            ttl_s=self.claims.ttl_s,
            kind=kind,
            usd=self.image_usd if kind == "image" else self.text_usd,
            period=self.period,
            resume=kind == "image",
        )

    def _settle_failure(self, key: str, reservation_id: str, error: RunwareError) -> None:
        """A failed task's reservation: given back if provably not billed, charged if it
        was, left open (resubmitted next time) if nobody knows."""
        billed = getattr(error, "billed", None)
        if billed is False:
            self.ledger.release(reservation_id, error.detail)
        elif billed is True:
            paid = error.paid_usd if error.paid_usd else self.image_usd
            self.ledger.record_paid_waste(key, reservation_id, paid)


def _image_meta(image: GeneratedImage) -> dict[str, Any]:
    return {
        "extension": image.extension,
        "content_type": image.content_type,
        "width": image.width,
        "height": image.height,
        "seed": image.seed,
        "prompt": image.prompt,
        "enhanced_prompt": image.enhanced_prompt,
        "model": image.model,
        "task_uuid": image.task_uuid,
        "image_uuid": image.image_uuid,
        "resumed": bool(getattr(image, "resumed", False)),
    }
