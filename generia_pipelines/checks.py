"""Asset checks, run inside each partition's materialization (they need its partition).

Each returns an ``AssetCheckResult``; the assets declare the matching ``AssetCheckSpec``s.
Platform-facing checks ask the platform itself, not the ledger, what exists.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    PartitionsDefinition,
    PreviewWarning,
)

from generia_pipelines.clients.errors import RpcError, Unimplemented
from generia_pipelines.clients.platform import CharacterClient, MediaClient, PostClient
from generia_pipelines.generation.schemas import PostDraft, valid_tag
from generia_pipelines.ledger import Ledger, Unit

CHARACTER_COUNT = "character_count_reached"
AVATARS_CONFIRMED = "every_character_has_confirmed_avatar"
CAPTION_RULES = "captions_and_tags_within_limits"
POST_IMAGES_OWNED = "every_post_image_confirmed_and_owned_by_author"
NO_DUPLICATES = "no_duplicate_units"

#: What each check verifies, as the UI shows it.
DESCRIPTIONS = {
    CHARACTER_COUNT: "The world has as many created characters as its catalog entry asks for.",
    AVATARS_CONFIRMED: "Every character carries, on the platform, the avatar whose upload "
    "was confirmed.",
    CAPTION_RULES: "Captions are non-empty and within the platform's length; 1-10 distinct "
    "tags, each within the tag rules.",
    POST_IMAGES_OWNED: "Every published post's image exists on the platform, is confirmed, "
    "and belongs to the post's author.",
    NO_DUPLICATES: "No character, post or media is recorded for two units of work, and no "
    "unit had a second remote object created for it.",
}

CAPTION_MAX = 2200
TAGS_MAX = 10
#: Platform reads in flight at once while checking (a world has up to 250 posts a day).
CHECK_CONCURRENCY = 32

ItemT = TypeVar("ItemT")


async def _each(
    items: Iterable[ItemT], probe: Callable[[ItemT], Awaitable[str | None]]
) -> list[str | None]:
    """``probe`` every item, a bounded number at once: a problem's text, or None."""
    gate = asyncio.Semaphore(CHECK_CONCURRENCY)

    async def one(item: ItemT) -> str | None:
        async with gate:
            return await probe(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


def specs(
    asset: str, *names: str, partitions_def: PartitionsDefinition | None = None
) -> list[AssetCheckSpec]:
    """The checks of ``asset``, partitioned like it so each partition has its own verdict."""
    with warnings.catch_warnings():  # partitioned checks are a preview in Dagster 1.13
        warnings.simplefilter("ignore", category=PreviewWarning)
        return [
            AssetCheckSpec(
                name, asset=asset, partitions_def=partitions_def, description=DESCRIPTIONS[name]
            )
            for name in names
        ]


def character_count(
    units: list[Unit], target: int, asset: AssetKey | None = None
) -> AssetCheckResult:
    made = sum(1 for u in units if u.done and u.character_id)
    return AssetCheckResult(
        asset_key=asset,
        check_name=CHARACTER_COUNT,
        passed=made >= target,
        metadata={"characters": made, "target": target},
    )


async def avatars_confirmed(
    character_units: list[Unit],
    ledger: Ledger,
    avatar_keys: list[str],
    client: CharacterClient,
    world_id: str,
    asset: AssetKey | None = None,
) -> AssetCheckResult:
    """Every created character carries, on the platform, the avatar the ledger confirmed."""

    async def probe(pair: tuple[Unit, str]) -> str | None:
        person, key = pair
        unit = ledger.get(key)
        if unit is None or not unit.done or not unit.variants:
            return "no confirmed avatar"
        remote = await client.get_character(str(person.character_id), world_id=world_id)
        if remote.avatar_media_id != unit.media_id:
            return f"platform avatar {remote.avatar_media_id} != confirmed {unit.media_id}"
        return None

    found = await _each(zip(character_units, avatar_keys, strict=True), probe)
    problems = {
        str(person.character_id): problem
        for person, problem in zip(character_units, found, strict=True)
        if problem is not None
    }
    return AssetCheckResult(
        asset_key=asset,
        check_name=AVATARS_CONFIRMED,
        passed=not problems,
        metadata={"characters": len(character_units), "problems": MetadataValue.json(problems)},
    )


def caption_rules(drafts: list[PostDraft], asset: AssetKey | None = None) -> AssetCheckResult:
    problems = []
    for index, draft in enumerate(drafts):
        if not draft.caption.strip() or len(draft.caption) > CAPTION_MAX:
            problems.append(f"draft {index}: caption length {len(draft.caption)}")
        if not 1 <= len(draft.tags) <= TAGS_MAX or len(set(draft.tags)) != len(draft.tags):
            problems.append(f"draft {index}: {len(draft.tags)} tags (or repeated)")
        problems.extend(f"draft {index}: bad tag {t!r}" for t in draft.tags if not valid_tag(t))
    return AssetCheckResult(
        asset_key=asset,
        check_name=CAPTION_RULES,
        passed=not problems,
        metadata={"drafts": len(drafts), "problems": MetadataValue.json(problems[:50])},
    )


async def post_images_owned(
    published: list[Unit],
    post_client: PostClient,
    media_client: MediaClient,
    world_id: str,
    asset: AssetKey | None = None,
) -> AssetCheckResult:
    """Ask the platform: each post exists as its author's, its media is confirmed and theirs.

    ``GetPost`` and ``GetMedia`` are not in the specification. A platform without them
    cannot be asked: the check then says so, as a warning, instead of failing. A served
    ``Post`` without a media id is compared with the media the ledger confirmed.
    """
    lacking = [
        f"{client.service}.{method}"
        for client, method in ((post_client, "GetPost"), (media_client, "GetMedia"))
        if client.contract.has_method(method) is False
    ]
    if lacking:
        return not_checkable(POST_IMAGES_OWNED, asset, f"the platform lacks {', '.join(lacking)}")
    post_has_media = post_client.contract.has_field("post.Post", "media_id") is not False

    async def probe(unit: Unit) -> str | None:
        remote = await post_client.get_post(str(unit.post_id), world_id=world_id)
        if remote.character_id != unit.character_id:
            return f"post {remote.post_id} is by {remote.character_id}, not {unit.character_id}"
        if post_has_media and remote.media_id != unit.media_id:
            return f"post {remote.post_id} shows media {remote.media_id}, not {unit.media_id}"
        media = await media_client.get_media(str(unit.media_id), world_id=world_id)
        if media.character_id != unit.character_id:
            return f"media {media.media_id} belongs to {media.character_id}"
        if not media.variants:
            return f"media {media.media_id} is not confirmed"
        return None

    async def guarded(unit: Unit) -> str | None:
        try:
            return await probe(unit)
        except Unimplemented as exc:
            raise _NotServed(exc) from None
        except RpcError as exc:
            return str(exc)

    try:
        found = await _each(published, guarded)
    except _NotServed as exc:  # a platform that could not say so through reflection
        return not_checkable(POST_IMAGES_OWNED, asset, str(exc.error))
    problems = {
        unit.key: problem for unit, problem in zip(published, found, strict=True) if problem
    }
    return AssetCheckResult(
        asset_key=asset,
        check_name=POST_IMAGES_OWNED,
        passed=not problems,
        metadata={"posts": len(published), "problems": MetadataValue.json(problems)},
    )


class _NotServed(Exception):
    def __init__(self, error: RpcError) -> None:
        self.error = error


def not_checkable(name: str, asset: AssetKey | None, reason: str) -> AssetCheckResult:
    """A warning, not a failure: the platform offers no way to verify this."""
    return AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description=f"not checkable on this platform: {reason}",
        metadata={"status": "not checkable on this platform", "reason": reason},
    )


def no_duplicates(ledger: Ledger, world_id: str, asset: AssetKey | None = None) -> AssetCheckResult:
    found = ledger.duplicates(world_id)
    return AssetCheckResult(
        asset_key=asset,
        check_name=NO_DUPLICATES,
        passed=not found,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "duplicates": len(found),
            "details": MetadataValue.json(
                [
                    {"remote_id": d.remote_id, "units": list(d.unit_keys), "reason": d.reason}
                    for d in found[:50]
                ]
            ),
        },
    )
