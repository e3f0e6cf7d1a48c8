"""One world's units of work for one period: their ledger, budget, claims and providers.

``UnitWork`` is what every unit pipeline (brief, character, avatar, post) works through:
texts and images come from the ledger when already paid for, else from one reserved paid
call; uploads resume from the media id already PUT; creates are recorded with their remote
id. Providers are the typed clients, handed in by the asset layer (or a test, or a script).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from generia_pipelines.budget import TEXT_USD, Budget
from generia_pipelines.clients.errors import UploadError
from generia_pipelines.clients.grpc_base import GrpcClient
from generia_pipelines.clients.platform import MediaClient
from generia_pipelines.clients.records import ConfirmedUpload, MediaType
from generia_pipelines.clients.upload import PresignedUploader
from generia_pipelines.generation.prompts import Prompt
from generia_pipelines.ledger import Ledger, LedgerError, Stage, StoredImage, Unit
from generia_pipelines.units.fanout import Outcome
from generia_pipelines.units.paid import (
    ImageProvider,
    PaidCalls,
    ProviderGate,
    TextProvider,
    TextRecord,
)
from generia_pipelines.units.session import ClaimSession

T = TypeVar("T", bound=BaseModel)


@dataclass
class UnitWork:
    """One world's ledger, budget, claims and providers for one period ("" = setup, or a
    date). Every paid call goes through ``paid``; every unit is worked on under its lease."""

    world_id: str
    period: str
    budget: Budget
    ledger: Ledger
    claims: ClaimSession
    text: TextProvider | None = None
    images: ImageProvider | None = None
    image_usd: float = 0.0
    media: MediaClient | None = None
    uploader: PresignedUploader | None = None
    gate: ProviderGate = field(default_factory=ProviderGate)
    paid: PaidCalls = field(init=False)

    def __post_init__(self) -> None:
        self.paid = PaidCalls(
            self.ledger,
            self.claims,
            self.world_id,
            self.period,
            self.budget,
            image_usd=self.image_usd,
            text_usd=TEXT_USD,
            gate=self.gate,
            logger=self.claims.log,
        )

    @property
    def log(self) -> Any:
        return self.claims.log

    async def text_for(
        self, key: str, schema: type[T], prompt: Prompt, *, notes: Mapping[str, str] | None = None
    ) -> tuple[T, Outcome, Unit]:
        """The unit's text: from the ledger if paid for already, else generated and recorded
        (with ``notes`` beside it); with the unit as it now stands."""
        unit = self.ledger.get(key)
        if unit is not None and unit.reached(Stage.TEXT_DONE) and unit.payload:
            return schema.model_validate(unit.payload["value"]), Outcome.REUSED, unit
        extra = dict(notes or {})
        value, unit = await self.write_text(
            key, schema, prompt, lambda v: ({"value": v.model_dump(mode="json"), **extra}, None)
        )
        return value, Outcome.CREATED, unit

    async def write_text(
        self,
        key: str,
        schema: type[T],
        prompt: Prompt,
        record: Callable[[T], TextRecord],
    ) -> tuple[T, Unit]:
        """One reserved text call whose result ``record`` turns into the unit's payload
        (and author), stored in the write that charges the call."""
        if self.text is None:
            raise RuntimeError("UnitWork.write_text needs a text provider")
        value, unit = await self.paid.text(key, schema, prompt, self.text, record)
        if unit is None:  # pragma: no cover - record was given
            raise RuntimeError(f"{key}: the text was not recorded")
        return value, unit

    async def generate_text(self, key: str, schema: type[T], prompt: Prompt) -> T:
        """One reserved text call that belongs to no unit's payload (a batch plan)."""
        if self.text is None:
            raise RuntimeError("UnitWork.generate_text needs a text provider")
        value, _ = await self.paid.text(key, schema, prompt, self.text)
        return value

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
        if self.images is None:
            raise RuntimeError("UnitWork.image_for needs an image provider")
        stored = await self.paid.image(key, prompt, seed, {}, self.images)
        return stored, Outcome.CREATED

    async def upload_and_confirm(
        self, unit: Unit, image: StoredImage, character_id: str, media_type: MediaType
    ) -> tuple[ConfirmedUpload, Unit]:
        """Presign → PUT → confirm; resumes after a crash from the media id already PUT.
        Returns the confirmation and the unit as now recorded.

        A failed upload is counted on the unit, and the next attempt presigns under a new
        idempotency key: replaying the failed attempt's presigns would hand back URLs that
        may have expired since, and the unit could never be uploaded.
        """
        if self.media is None or self.uploader is None:
            raise RuntimeError("UnitWork.upload_and_confirm needs the media client and uploader")
        self.claims.ensure(unit.key)
        uploader = self.uploader
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
        confirmed = await self.media.confirm(
            media_id, character_id, world_id=self.world_id, idempotency_key=f"{unit.key}/confirm"
        )
        recorded = self.ledger.record_media(
            unit.key,
            media_id,
            [
                {"name": v.name, "url": v.url, "width": v.width, "height": v.height}
                for v in confirmed.variants
            ],
        )
        return confirmed, recorded


#: Prefix of a ledger error after which a failed create may still exist on the platform.
POSSIBLY_COMMITTED = "possibly committed"


async def create_remote(
    unit: Unit,
    what: str,
    create: Callable[[], Awaitable[str]],
    *,
    ledger: Ledger,
    client: GrpcClient,
    honoured: bool,
    log: logging.Logger | Any,
    claims: ClaimSession | None = None,
) -> Unit:
    """Run the create call of ``unit``, record the remote id, and name suspected duplicates;
    returns the unit as recorded.

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
            ledger.record_failure(unit.key, f"{POSSIBLY_COMMITTED}: {exc}")
        raise
    recorded = ledger.record_created(unit.key, remote_id)
    kept = recorded.remote_id
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
    return recorded
