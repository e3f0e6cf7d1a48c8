"""What every asset shares: the per-world work context, bounded fan-out, and metadata.

A ``WorldWork`` wraps the ledger, the budget and the providers for one world and period, so
asset bodies read as the data flow: reuse what the ledger holds, reserve budget, pay, record.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

from dagster import (
    AssetExecutionContext,
    Backoff,
    Failure,
    Jitter,
    MetadataValue,
    RetryPolicy,
)
from pydantic import BaseModel

from generia_pipelines.budget import TEXT_USD, Budget, BudgetExceeded
from generia_pipelines.catalog import CatalogError
from generia_pipelines.clients.errors import (
    ConfigError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    UploadError,
)
from generia_pipelines.clients.grpc_base import GrpcClient
from generia_pipelines.clients.records import ConfirmedUpload, MediaType
from generia_pipelines.clients.runware import RunwareRequestError, RunwareUnavailable
from generia_pipelines.clients.text.errors import TextProviderError
from generia_pipelines.clients.upload import PresignedUploader
from generia_pipelines.generation.prompts import Prompt
from generia_pipelines.ledger import Ledger, LedgerError, Stage, StoredImage, Unit
from generia_pipelines.partitions import InvalidPartitionKey
from generia_pipelines.resources.grpc import MediaResource
from generia_pipelines.resources.runware import RunwareResource
from generia_pipelines.resources.text import TextGenerationResource
from generia_pipelines.units.causes import ProviderDown, TooManyInvalid, summarize
from generia_pipelines.units.paid import PaidCalls, ProviderGate
from generia_pipelines.units.session import ClaimSession, UnitBusy

GROUP = "generia"
#: Dagster pools: cap Runware and text-model pressure across concurrent runs.
RUNWARE_POOL = "runware"
TEXT_POOL = "text_model"
#: Step retries: transient trouble outlives the clients' own retries now and then.
RETRY = RetryPolicy(max_retries=3, delay=1.0, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)

T = TypeVar("T", bound=BaseModel)
ItemT = TypeVar("ItemT")
P = ParamSpec("P")
R = TypeVar("R")

#: Failures that say the input or a setting is wrong (or the budget is spent): a step retry
#: would fail the same way, only later, so none is made.
_FUTILE = (
    CatalogError,
    InvalidPartitionKey,
    ConfigError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RunwareRequestError,
    BudgetExceeded,
    # The ledger cannot be written: a retry seconds later meets the same disk.
    LedgerError,
    # Runware is down or keeps sending unusable images: retrying now only waits or pays.
    ProviderDown,
    TooManyInvalid,
    # Another live run works on the unit: it is left to that run, not fought over.
    UnitBusy,
)
#: Failures after which no unit of the step can succeed: start no further ones.
_STOPS_STEP = (BudgetExceeded, LedgerError)
#: HTTP statuses of a text provider that a retry cannot change (bad request, key, model).
_FUTILE_HTTP = frozenset({400, 401, 403, 404})
NOT_RETRIED = "not retried: a retry would fail the same way; finished work is kept"


def retry_is_futile(exc: BaseException) -> bool:
    """True when retrying cannot help: a bad world, setting, key, request or an empty budget."""
    if isinstance(exc, _FUTILE):
        return True
    if isinstance(exc, RunwareUnavailable) and getattr(exc, "billed", None) is False:
        return True  # Runware could not be reached at all: an outage, not a hiccup
    return isinstance(exc, TextProviderError) and exc.status in _FUTILE_HTTP


def run_partition_key(context: AssetExecutionContext) -> str:
    """The run's partition key, or "" when it has none.

    Dagster accepts an empty dynamic partition key and then treats the run as unpartitioned;
    the key's validation should say so, not Dagster's "non-partitioned run" invariant.
    """
    return context.partition_key if context.has_partition_key else ""


def fail_fast_on_bad_input(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn a futile-to-retry error into a Failure Dagster does not retry.

    Every asset has a retry policy for transient trouble; without this a missing world or a
    refused key would be retried three times with backoff, and its message buried under
    "Exceeded max_retries".
    """

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except Failure:
            raise
        except Exception as exc:
            if not retry_is_futile(exc):
                raise
            raise Failure(
                description=f"{type(exc).__name__}: {exc} ({NOT_RETRIED})", allow_retries=False
            ) from exc

    return run


class Outcome(StrEnum):
    CREATED = "created"
    REUSED = "reused"


@dataclass
class Tally:
    """Per-asset counts shown in the UI: what was made now, reused from before, or failed."""

    created: int = 0
    reused: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    #: Failed units whose failure a retry cannot fix (see ``retry_is_futile``).
    futile: set[str] = field(default_factory=set)
    errors: dict[str, BaseException] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def fail(self, key: str, error: BaseException) -> None:
        self.failed[key] = f"{type(error).__name__}: {error}"
        self.errors[key] = error
        if retry_is_futile(error):
            self.futile.add(key)

    def add(self, outcome: Outcome) -> None:
        if outcome is Outcome.CREATED:
            self.created += 1
        else:
            self.reused += 1

    def metadata(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "reused": self.reused,
            "failed": len(self.failed),
            "duration_s": round(time.monotonic() - self.started, 3),
        }


async def fan_out(
    items: Sequence[ItemT],
    key: Callable[[ItemT], str],
    work: Callable[[ItemT], Awaitable[Outcome]],
    *,
    limit: int,
    log: logging.Logger | Any,
    what: str,
) -> Tally:
    """Run ``work`` on every item with at most ``limit`` in flight; collect, don't abort.

    A unit's failure is recorded and the others go on (their progress is in the ledger);
    an exhausted budget or an unwritable ledger stops the whole step at once, since every
    further unit would fail the same way.
    """
    tally = Tally()
    gate = asyncio.Semaphore(max(1, limit))
    done = 0
    stopped: list[BaseException] = []

    async def one(item: ItemT) -> None:
        nonlocal done
        async with gate:
            if stopped:  # start nothing new, let in-flight work land
                tally.fail(key(item), stopped[0])
                return
            try:
                tally.add(await work(item))
            except _STOPS_STEP as exc:
                stopped.append(exc)
                tally.fail(key(item), exc)
            except Exception as exc:  # one bad unit must not lose the others' work
                tally.fail(key(item), exc)
                log.warning(f"{what} {key(item)} failed: {type(exc).__name__}: {exc}")
            done += 1
            if done == len(items) or done % 10 == 0:
                log.info(f"{what}: {done}/{len(items)} done")

    await asyncio.gather(*(one(item) for item in items))
    if stopped:
        reason = "budget exhausted" if isinstance(stopped[0], BudgetExceeded) else "ledger"
        raise Failure(
            description=f"{reason}: stopped {what}, finished work is kept: {stopped[0]}",
            metadata={**tally.metadata(), "cause": str(stopped[0])},
            allow_retries=False,
        )
    return tally


def fail_if_any(tally: Tally, what: str, total: int | None = None) -> None:
    """Fail the step when units failed, naming the dominant cause and its count.

    When every failure is one a retry cannot fix, the step is not retried.
    """
    if not tally.failed:
        return
    futile = set(tally.failed) <= tally.futile
    suffix = f" ({NOT_RETRIED})" if futile else ""
    count = total if total is not None else len(tally.failed) + tally.created + tally.reused
    raise Failure(
        description=summarize(tally.errors, count, what) + suffix,
        metadata={**tally.metadata(), "failures": MetadataValue.json(tally.failed)},
        allow_retries=not futile,
    )


class Stages:
    """Per-stage tallies of a step that takes each item through several stages on its own.

    Each item moves on as soon as its stage is done, so a failure is counted under the stage
    where it happened; ``failure`` then names every stage that had some.
    """

    def __init__(self, names: dict[Any, str]) -> None:
        self.names = names
        self.tallies = {stage: Tally() for stage in names}

    async def run(self, stage: Any, key: str, step: Awaitable[Outcome]) -> Outcome:
        tally = self.tallies[stage]
        try:
            outcome = await step
        except Exception as exc:
            tally.fail(key, exc)
            raise
        tally.add(outcome)
        return outcome

    def ok(self, *stages: Any) -> bool:
        return not any(self.tallies[stage].failed for stage in stages)

    def failure(self) -> Failure | None:
        """One Failure naming each stage's failed items; not retried if none can be fixed."""
        failed = [(stage, t) for stage, t in self.tallies.items() if t.failed]
        if not failed:
            return None
        futile = all(set(t.failed) <= t.futile for _, t in failed)
        parts = []
        for stage, tally in failed:
            total = len(tally.failed) + tally.created + tally.reused
            parts.append(summarize(tally.errors, total, self.names[stage]))
        sample = "; ".join(f"{k}: {v}" for _, t in failed for k, v in sorted(t.failed.items())[:3])
        suffix = f" ({NOT_RETRIED})" if futile else ""
        return Failure(
            description="; ".join(parts) + f" (done ones are kept){suffix}. First: {sample}",
            metadata={
                "failures": MetadataValue.json(
                    {k: v for _, t in failed for k, v in t.failed.items()}
                )
            },
            allow_retries=not futile,
        )


@dataclass
class WorldWork:
    """One world's ledger, budget, claims and providers for one period ("" = setup, or a date).

    Every paid call goes through ``paid`` (reserved first, intent recorded), every unit is
    worked on under its lease in ``claims``.
    """

    world_id: str
    period: str
    budget: Budget
    ledger: Ledger
    claims: ClaimSession
    text: TextGenerationResource | None = None
    runware: RunwareResource | None = None
    media: MediaResource | None = None
    gate: ProviderGate = field(default_factory=ProviderGate)
    paid: PaidCalls = field(init=False)

    def __post_init__(self) -> None:
        image_usd = self.runware.image_usd if self.runware is not None else 0.0
        self.paid = PaidCalls(
            self.ledger,
            self.claims,
            self.world_id,
            self.period,
            self.budget,
            image_usd=image_usd,
            text_usd=TEXT_USD,
            gate=self.gate,
            logger=self.claims.log,
        )

    async def text_for(self, key: str, schema: type[T], prompt: Prompt) -> tuple[T, Outcome]:
        """The unit's text: from the ledger if paid for already, else generated and recorded."""
        unit = self.ledger.get(key)
        if unit is not None and unit.reached(Stage.TEXT_DONE) and unit.payload:
            return schema.model_validate(unit.payload["value"]), Outcome.REUSED
        value = await self.generate_text(key, schema, prompt)
        self.ledger.record_text(key, {"value": value.model_dump(mode="json")})
        return value, Outcome.CREATED

    async def generate_text(self, key: str, schema: type[T], prompt: Prompt) -> T:
        """One reserved text call (not recorded: callers decide which unit it belongs to)."""
        if self.text is None:
            raise RuntimeError("WorldWork.generate_text needs the text resource")
        return await self.paid.text(key, schema, prompt, self.text)

    async def image_for(self, key: str, prompt: str, seed: int) -> tuple[StoredImage, Outcome]:
        """The unit's image: the paid-for bytes from the ledger, else one paid Runware task
        (an earlier run's open task resubmitted under its taskUUID)."""
        unit = self.ledger.get(key)
        if unit is not None and unit.image is not None:
            stored = self.ledger.load_image(key)
            if stored is not None:
                return stored, Outcome.REUSED
            # confirmed: its bytes were dropped
            raise LedgerError(f"{key}: its image was paid for and confirmed; not paying again")
        if self.runware is None:
            raise RuntimeError("WorldWork.image_for needs the runware resource")
        stored = await self.paid.image(key, prompt, seed, {}, self.runware.images())
        return stored, Outcome.CREATED

    async def upload_and_confirm(
        self, unit: Unit, image: StoredImage, character_id: str, media_type: MediaType
    ) -> ConfirmedUpload:
        """Presign → PUT → confirm; resumes after a crash from the media id already PUT.

        A failed upload is counted on the unit, and the next attempt presigns under a new
        idempotency key: replaying the failed attempt's presigns would hand back URLs that
        may have expired since, and the unit could never be uploaded.
        """
        if self.media is None:
            raise RuntimeError("WorldWork.upload_and_confirm needs the media resource")
        self.claims.ensure(unit.key)
        uploader: PresignedUploader = self.media.uploader
        media_id = unit.media_id if unit.reached(Stage.UPLOADED) else None
        if media_id is None:
            extension = image.info.meta.get("extension", ".png")
            retry = f"/retry{unit.attempts}" if unit.attempts else ""
            try:
                uploaded = await uploader.upload(
                    world_id=self.world_id,
                    character_id=character_id,
                    media_type=media_type,
                    filename=f"{unit.key.replace('/', '_')}{extension}",
                    content_type=image.info.content_type,
                    data=image.data,
                    idempotency_key=f"{unit.key}/presign{retry}",
                )
            except UploadError as exc:
                self.ledger.record_failure(unit.key, exc)
                raise
            media_id = uploaded.media_id
            self.ledger.record_upload(unit.key, media_id)
        confirmed = await self.media.client.confirm(
            media_id, character_id, world_id=self.world_id, idempotency_key=f"{unit.key}/confirm"
        )
        self.ledger.record_media(
            unit.key,
            media_id,
            [
                {"name": v.name, "url": v.url, "width": v.width, "height": v.height}
                for v in confirmed.variants
            ],
        )
        return confirmed


#: Prefix of a ledger error after which a failed create may still exist on the platform.
POSSIBLY_COMMITTED = "possibly committed"


async def create_remote(
    unit: Unit,
    what: str,
    create: Callable[[], Awaitable[str]],
    *,
    book: Ledger,
    client: GrpcClient,
    honoured: bool,
    log: logging.Logger | Any,
    claims: ClaimSession | None = None,
) -> str:
    """Run the create call of ``unit``, record the remote id, and name suspected duplicates.

    A duplicate can slip through two ways: another writer recorded a different id first
    (the ledger keeps the first), or the call was retried after a status that may hide a
    commit (in this call, or in an earlier run per the ledger) on a service that does not
    honour idempotency keys. Neither can be undone here; both are logged with the unit key.
    """
    if claims is not None:
        claims.ensure(unit.key)
    try:
        remote_id = await create()
    except Exception as exc:
        if client.uncertain_attempts(unit.key):
            book.record_failure(unit.key, f"{POSSIBLY_COMMITTED}: {exc}")
        raise
    kept = book.record_created(unit.key, remote_id).remote_id
    if kept != remote_id:
        log.warning(f"suspected duplicate {what} {remote_id} for {unit.key} (ledger has {kept})")
    uncertain = client.uncertain_attempts(unit.key)
    earlier = (unit.error or "").startswith(POSSIBLY_COMMITTED)
    if uncertain or earlier:
        reason = ", ".join(uncertain) or "a failure in an earlier run"
        if honoured:
            log.info(
                f"{what} {remote_id} for {unit.key} was retried after {reason}; "
                "the idempotency key made the retry safe"
            )
        else:
            log.warning(
                f"suspected duplicate {what} for {unit.key}: created {remote_id} on a retry "
                f"after {reason}, and the service does not honour idempotency keys, so an "
                "earlier attempt may have created another"
            )
    return remote_id


def variant_url(unit: Unit, name: str = "medium") -> str:
    """A confirmed unit's image URL (the named variant, else the first)."""
    for variant in unit.variants:
        if variant.get("name") == name:
            return str(variant.get("url", ""))
    return str(unit.variants[0].get("url", "")) if unit.variants else ""


def image_gallery(items: Iterable[tuple[str, str]], limit: int = 12) -> MetadataValue:
    """Markdown image previews (Dagster has no image metadata type)."""
    cells = [f"![{label}]({url})" for label, url in items if url][:limit]
    return MetadataValue.md(" ".join(cells) if cells else "_no images yet_")


def table_md(
    header: Sequence[str], rows: Iterable[Sequence[Any]], limit: int = 20
) -> MetadataValue:
    """A small markdown table preview for the UI."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in list(rows)[:limit]:
        cells = [str(cell).replace("|", "\\|").replace("\n", " ")[:120] for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    return MetadataValue.md("\n".join(lines))
