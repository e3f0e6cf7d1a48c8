"""What every asset shares: failure policy, the unit work built from resources, metadata.

The units themselves are worked in :mod:`generia_pipelines.units` (no Dagster there); this
module turns resources into a :class:`UnitWork`, the units' tallies into Dagster failures
that say whether a retry can help, and rows into the UI's previews.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

from dagster import (
    AssetDep,
    AssetKey,
    AssetSpec,
    Backoff,
    Failure,
    Jitter,
    MetadataValue,
    PartitionsDefinition,
    RetryPolicy,
)

from generia_pipelines.budget import Budget
from generia_pipelines.clients.grpc_base import GrpcClient
from generia_pipelines.ledger import Ledger
from generia_pipelines.resources.grpc import MediaResource
from generia_pipelines.resources.runware import RunwareResource
from generia_pipelines.resources.text import TextGenerationResource
from generia_pipelines.units.fanout import Outcome, StepStopped, StepTallies, Tally, fan_out
from generia_pipelines.units.model import variant_url
from generia_pipelines.units.session import ClaimSession
from generia_pipelines.units.work import UnitWork

__all__ = [
    "GROUP",
    "NOT_RETRIED",
    "RETRY",
    "RUNWARE_POOL",
    "Outcome",
    "StepTallies",
    "Tally",
    "as_failure",
    "contract_md",
    "fail_fast_on_bad_input",
    "fan_out",
    "image_gallery",
    "partition_spec",
    "retry_is_futile",
    "steps_failure",
    "table_md",
    "unit_work",
    "variant_url",
]

GROUP = "generia"
#: The Dagster pool of every step: caps steps across runs (each run's clients cap its calls).
RUNWARE_POOL = "runware"
#: Step retries: transient trouble outlives the clients' own retries now and then.
RETRY = RetryPolicy(max_retries=3, delay=1.0, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)

P = ParamSpec("P")
R = TypeVar("R")

NOT_RETRIED = "not retried: a retry would fail the same way; finished work is kept"


def retry_is_futile(exc: BaseException) -> bool:
    """True when the error says a retry cannot help (``retryable``; see ``errors.py``).

    A bad world, setting, key or request, an empty budget, a provider outage that outlived
    the clients' retries, a unit another run holds: each error class decides for itself.
    Errors of other libraries are taken as transient.
    """
    return getattr(exc, "retryable", True) is False


def as_failure(exc: BaseException) -> BaseException:
    """The error a step should raise for ``exc``: a Failure Dagster does not retry when no
    retry can help, ``exc`` itself otherwise.

    Every asset has a retry policy for transient trouble; without this a missing world or a
    refused key would be retried three times with backoff, and its message buried under
    "Exceeded max_retries".
    """
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, StepStopped):
        return Failure(
            description=str(exc),
            metadata={**exc.tally.metadata(), "cause": str(exc.cause)},
            allow_retries=False,
        )
    if not retry_is_futile(exc):
        return exc
    return Failure(description=f"{type(exc).__name__}: {exc} ({NOT_RETRIED})", allow_retries=False)


def fail_fast_on_bad_input(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Raise a futile-to-retry error as a Failure Dagster does not retry (see as_failure)."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            failure = as_failure(exc)
            if failure is exc:
                raise
            # An expected user error: its message says it all, without the traceback of
            # the error it replaces.
            raise failure from None

    return run


def unit_work(
    world_id: str,
    period: str,
    budget: Budget,
    ledger: Ledger,
    claims: ClaimSession,
    *,
    text: TextGenerationResource | None = None,
    runware: RunwareResource | None = None,
    media: MediaResource | None = None,
) -> UnitWork:
    """The unit work of one world and period, its providers taken from the run's resources."""
    return UnitWork(
        world_id,
        period,
        budget,
        ledger,
        claims,
        text=text,
        images=runware.images() if runware is not None else None,
        image_usd=runware.image_usd if runware is not None else 0.0,
        media=media.client if media is not None else None,
        uploader=media.uploader if media is not None else None,
    )


def steps_failure(steps: StepTallies) -> Failure | None:
    """One Failure naming each stage's dominant cause; not retried if none can be fixed."""
    if not steps.failed():
        return None
    futile = all(retry_is_futile(e) for e in steps.errors().values())
    suffix = f" ({NOT_RETRIED})" if futile else ""
    return Failure(
        description=steps.summary(suffix),
        metadata={
            "failures": MetadataValue.json(
                {k: v for _, t in steps.failed() for k, v in t.failed.items()}
            )
        },
        allow_retries=not futile,
    )


def partition_spec(
    key: AssetKey,
    *,
    description: str,
    kinds: set[str],
    partitions_def: PartitionsDefinition,
    deps: Sequence[AssetKey | AssetDep] = (),
) -> AssetSpec:
    """A spec of one of the pipeline's assets: in its group, partitioned, and skippable so
    that a range run marks only the partitions it finished (``batch.report_partition``)."""
    return AssetSpec(
        key,
        deps=list(deps),
        description=description,
        group_name=GROUP,
        kinds=kinds,
        partitions_def=partitions_def,
        skippable=True,
    )


def contract_md(*clients: GrpcClient) -> MetadataValue:
    """What each service's contract check found (GENERIA_CONTRACT_CHECK), for the UI."""
    return MetadataValue.md("\n".join(f"- {c.contract.summary()}" for c in clients))


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
