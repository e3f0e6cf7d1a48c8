"""The ledger's records as the pipeline sees them: a unit's stage, its image, duplicates."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from generia_pipelines.errors import GeneriaError
from generia_pipelines.units.keys import AVATARS, BRIEFS, CHARACTERS, POSTS


class LedgerError(GeneriaError):
    """The ledger cannot be opened or holds something inconsistent."""

    retryable = False  # a retry seconds later meets the same disk or database


class Stage(enum.IntEnum):
    """How far a unit got; a unit's stage only moves forward."""

    PLANNED = 0
    TEXT_DONE = 1
    IMAGE_DONE = 2
    UPLOADED = 3
    CONFIRMED = 4
    CREATED = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    def __str__(self) -> str:
        return self.label

    @classmethod
    def from_label(cls, label: str) -> Stage:
        return cls[label.upper()]


@dataclass(frozen=True)
class ImageInfo:
    """What is known of a unit's paid-for image (the bytes are loaded separately)."""

    sha256: str
    size: int
    content_type: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class StoredImage:
    data: bytes
    info: ImageInfo


@dataclass(frozen=True)
class Unit:
    """One row of the ledger."""

    key: str
    kind: str
    world_id: str
    partition: str
    slot: str
    status: Stage
    payload: dict[str, Any] | None = None
    character_id: str | None = None
    media_id: str | None = None
    post_id: str | None = None
    variants: tuple[dict[str, Any], ...] = ()
    image: ImageInfo | None = None
    cost_usd: float = 0.0
    attempts: int = 0
    error: str | None = None
    orphans: tuple[dict[str, str], ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status is Stage.CREATED

    def reached(self, stage: Stage) -> bool:
        return self.status >= stage

    @property
    def slot_number(self) -> int | None:
        return None if self.kind in (AVATARS, BRIEFS) else int(self.slot)

    @property
    def remote_id(self) -> str | None:
        """The id of what the unit created: the character, the post, or the avatar's media."""
        if self.kind == BRIEFS:
            return None
        if self.kind == CHARACTERS:
            return self.character_id
        if self.kind == POSTS:
            return self.post_id
        return self.media_id


@dataclass(frozen=True)
class Duplicate:
    """A remote object recorded for more than one unit, or more than one for one unit."""

    field: str
    remote_id: str
    unit_keys: tuple[str, ...]
    reason: str


def now_utc() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; every stored time is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def row_to_unit(row: sa.Row[Any]) -> Unit:
    m = row._mapping
    image = None
    if m["image_sha256"]:
        image = ImageInfo(
            m["image_sha256"],
            m["image_size"] or 0,
            m["image_content_type"] or "",
            dict(m["image_meta"] or {}),
        )
    return Unit(
        key=m["unit_key"],
        kind=m["kind"],
        world_id=m["world_id"],
        partition=m["partition"],
        slot=m["slot"],
        status=Stage.from_label(m["status"]),
        payload=m["payload"],
        character_id=m["character_id"],
        media_id=m["media_id"],
        post_id=m["post_id"],
        variants=tuple(m["variants"] or ()),
        image=image,
        cost_usd=float(m["cost_usd"]),
        attempts=int(m["attempts"]),
        error=m["error"],
        orphans=tuple(m["orphans"] or ()),
        created_at=as_utc(m["created_at"]),
        updated_at=as_utc(m["updated_at"]),
    )


def unit_sort_key(unit: Unit) -> tuple[str, int, str]:
    number = unit.slot_number
    return (unit.partition, -1 if number is None else number, unit.slot)


def sniff_content_type(data: bytes) -> str | None:
    """The image type from its magic bytes (PNG, JPEG, WEBP), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def variant_dict(variant: Any) -> dict[str, Any]:
    if is_dataclass(variant) and not isinstance(variant, type):
        return asdict(variant)
    if isinstance(variant, Mapping):
        return dict(variant)
    raise TypeError(f"a media variant must be a MediaVariant or a mapping, not {variant!r}")


def json_object(value: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A JSON-safe copy, so a bad payload fails here with a clear message, not in SQL."""
    try:
        decoded: dict[str, Any] = json.loads(json.dumps(dict(value)))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable: {exc}") from None
    return decoded


def variant_url(unit: Unit, name: str = "medium") -> str:
    """A confirmed unit's image URL (the named variant, else the first)."""
    for variant in unit.variants:
        if variant.get("name") == name:
            return str(variant.get("url", ""))
    return str(unit.variants[0].get("url", "")) if unit.variants else ""
