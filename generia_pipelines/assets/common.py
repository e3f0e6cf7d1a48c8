"""What every asset shares: its group, pool, retry policy and spec, and the unit work
built from the run's resources.

The units themselves are worked in :mod:`generia_pipelines.units` (no Dagster there); the
failures the assets raise are in ``failures.py``, what they show in the UI in ``metadata.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetDep,
    AssetKey,
    AssetSpec,
    Backoff,
    Jitter,
    PartitionsDefinition,
    RetryPolicy,
)

from generia_pipelines.budget import Budget
from generia_pipelines.ledger import Ledger
from generia_pipelines.resources.grpc import MediaResource
from generia_pipelines.resources.runware import RunwareResource
from generia_pipelines.resources.text import TextGenerationResource
from generia_pipelines.units.fanout import Outcome, StepTallies, Tally, fan_out
from generia_pipelines.units.model import variant_url
from generia_pipelines.units.session import ClaimSession
from generia_pipelines.units.work import UnitWork

__all__ = [
    "GROUP",
    "RETRY",
    "RUNWARE_POOL",
    "Outcome",
    "StepTallies",
    "Tally",
    "fan_out",
    "partition_spec",
    "unit_work",
    "variant_url",
]

GROUP = "generia"
#: The Dagster pool of every step: caps steps across runs (each run's clients cap its calls).
RUNWARE_POOL = "runware"
#: Step retries: transient trouble outlives the clients' own retries now and then.
RETRY = RetryPolicy(max_retries=3, delay=1.0, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)


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
