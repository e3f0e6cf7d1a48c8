"""Many partitions in one run, each reported on its own.

A range run (a backfill under the assets' ``BackfillPolicy``, or the schedule's and the
sensor's range requests) hands one step a rectangle of worlds × days. An ``Output`` or a
``MaterializeResult`` would mark the whole range materialized, so every partition that
finishes is logged at once as its own ``AssetMaterialization`` and asset check evaluations.
A partition that fails is left unmarked: when the step fails, Dagster marks exactly the
planned partitions without a materialization as failed. The partitions run side by side
under the run's shared clients, which hold the Runware and text limits for all of them.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from dagster import (
    AssetCheckEvaluation,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    BackfillPolicy,
    DagsterEventType,
    Failure,
    MaterializeResult,
    MetadataValue,
    PartitionKeyRange,
    partition_loading_context,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from generia_pipelines.errors import ConfigError

from .failures import NOT_RETRIED, as_failure, retry_is_futile

#: Variable holding how many partitions one run takes (K); the schedule, the sensor and
#: backfills all cut their work into runs of at most this many partitions.
PARTITIONS_PER_RUN_VAR = "GENERIA_PARTITIONS_PER_RUN"
DEFAULT_PARTITIONS_PER_RUN = 50
MAX_PARTITIONS_PER_RUN = 1000
#: Failed partitions named one by one in a run's failure message; the metadata has all.
_NAMED_MAX = 20


def partitions_per_run(raw: str | None = None) -> int:
    """K: ``raw``, else GENERIA_PARTITIONS_PER_RUN, else 50; a bad value names the variable."""
    text = (os.environ.get(PARTITIONS_PER_RUN_VAR, "") if raw is None else raw).strip()
    if not text:
        return DEFAULT_PARTITIONS_PER_RUN
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(
            f"{PARTITIONS_PER_RUN_VAR}={text!r} is not a whole number of partitions"
        ) from None
    if not 1 <= value <= MAX_PARTITIONS_PER_RUN:
        raise ConfigError(
            f"{PARTITIONS_PER_RUN_VAR}={value} must be within 1..{MAX_PARTITIONS_PER_RUN}"
        )
    return value


def backfill_policy() -> BackfillPolicy:
    """Backfills launch runs of at most K partitions (one run each when K is 1)."""
    return BackfillPolicy.multi_run(max_partitions_per_run=partitions_per_run())


def run_partition_keys(context: AssetExecutionContext) -> list[str]:
    """The partitions of the run: a range's, one, or ``[""]`` for an unpartitioned run.

    A range's tags come first: a job backfill of world × date partitions tags each of its
    range runs with the range and also with the first partition's per-dimension tags, and
    Dagster then reports that one partition as the run's (1.13.27). Dagster accepts an empty
    dynamic partition key and treats the run as unpartitioned; the key's validation should
    say so, not Dagster's "non-partitioned run" invariant.
    """
    tags = context.run.tags
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    partitions = context.assets_def.partitions_def
    if start is not None and end is not None and partitions is not None:
        with partition_loading_context(dynamic_partitions_store=context.instance):
            keys = partitions.get_partition_keys_in_range(PartitionKeyRange(start, end))
        return [str(key) for key in keys]
    if context.has_partition_key:
        return [str(context.partition_key)]
    if context.has_partition_key_range:
        return [str(key) for key in context.partition_keys]
    return [""]


def target_of(
    context: AssetExecutionContext, asset: AssetKey, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The materialization a check of ``partition`` judges: the one just logged."""
    found = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset, asset_partitions=[partition]), limit=1
    ).records
    if not found:
        return None
    record = found[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def report_partition(
    context: AssetExecutionContext, partition: str, results: Sequence[MaterializeResult]
) -> None:
    """Mark ``partition`` of each result's asset materialized, then log its checks for it."""
    for result in results:
        context.log_event(
            AssetMaterialization(
                asset_key=_asset_of(result), partition=partition, metadata=result.metadata
            )
        )
    for result in results:
        if not result.check_results:
            continue
        asset = _asset_of(result)
        target = target_of(context, asset, partition)
        for check in result.check_results:
            context.log_event(
                AssetCheckEvaluation(
                    asset_key=check.asset_key or asset,
                    check_name=str(check.check_name),
                    passed=check.passed,
                    metadata=check.metadata,
                    severity=check.severity,
                    description=check.description,
                    partition=partition,
                    target_materialization_data=target,
                )
            )


def _asset_of(result: MaterializeResult) -> AssetKey:
    if result.asset_key is None:  # pragma: no cover - every result here names its asset
        raise ValueError("a partition's MaterializeResult must name its asset")
    return result.asset_key


@dataclass
class PartitionOutcome:
    """What became of one partition of the run: its results, and its failure if any."""

    key: str
    results: list[MaterializeResult] = field(default_factory=list)
    failure: BaseException | None = None


@dataclass
class RangeReport:
    """The run's partitions: the finished ones and why the others failed."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)

    def failure(self, what: str) -> BaseException | None:
        """One Failure listing every failed partition and its cause; not retried when no
        retry can help any of them. A run of one partition raises that partition's error."""
        if not self.failed:
            return None
        total = len(self.done) + len(self.skipped) + len(self.failed)
        futile = all(_futile(error) for error in self.failed.values())
        named = [f"{key}: {_cause(error)}" for key, error in list(self.failed.items())[:_NAMED_MAX]]
        more = len(self.failed) - len(named)
        tail = f"; and {more} more (see the metadata)" if more > 0 else ""
        suffix = f" ({NOT_RETRIED})" if futile else ""
        if total == 1:  # a run of one partition fails as it always did
            return next(iter(self.failed.values()))
        return Failure(
            description=f"{len(self.failed)} of {total} {what} failed "
            f"(the {len(self.done) + len(self.skipped)} others are materialized){suffix}: "
            + "; ".join(named)
            + tail,
            metadata={
                "failed_partitions": MetadataValue.json(
                    {key: _cause(error) for key, error in self.failed.items()}
                ),
                "materialized_partitions": len(self.done) + len(self.skipped),
            },
            allow_retries=not futile,
        )


def _cause(error: BaseException) -> str:
    """The error in a line; the run's failure says once whether a retry can help."""
    text = (
        str(error.description) if isinstance(error, Failure) else f"{type(error).__name__}: {error}"
    )
    return text.replace(f" ({NOT_RETRIED})", "")


def _futile(error: BaseException) -> bool:
    if isinstance(error, Failure):
        return not error.allow_retries
    return retry_is_futile(error)


def partitions_in_flight(keys: int, units_each: int, unit_width: int) -> int:
    """How many partitions to work at once: enough to keep ``unit_width`` units busy.

    Each partition keeps up to ``unit_width`` of its own units in flight, and the providers'
    clients cap the calls; more partitions at once would only make all of them finish late,
    instead of reporting them one after another.
    """
    wanted = math.ceil(2 * unit_width / max(1, units_each)) + 1
    return max(1, min(keys, wanted))


async def run_partitions(
    context: AssetExecutionContext,
    keys: Sequence[str],
    work: Callable[[str], Awaitable[PartitionOutcome]],
    *,
    in_flight: int,
    skip: frozenset[str] = frozenset(),
) -> RangeReport:
    """Work every partition, ``in_flight`` at once, and report each as soon as it is done.

    One partition's failure is recorded and the others go on; their work is in the ledger
    either way. Partitions in ``skip`` were materialized by an earlier attempt of this run.
    """
    report = RangeReport(skipped=[key for key in keys if key in skip])
    gate = asyncio.Semaphore(max(1, in_flight))

    async def one(key: str) -> None:
        async with gate:
            try:
                outcome = await work(key)
            except Exception as exc:  # one world-day must not lose the others
                report.failed[key] = as_failure(exc)
                if len(keys) > 1:
                    context.log.warning(f"partition {key} failed: {_cause(exc)}")
                return
        if outcome.results:
            report_partition(context, key, outcome.results)
        if outcome.failure is not None:
            report.failed[key] = outcome.failure
            if len(keys) > 1:
                context.log.warning(f"partition {key} failed: {_cause(outcome.failure)}")
        else:
            report.done.append(key)

    await asyncio.gather(*(one(key) for key in keys if key not in skip))
    if report.skipped:
        context.log.info(
            f"{len(report.skipped)} partitions were materialized by an earlier attempt of this "
            "run and are not worked again"
        )
    return report


def materialized_by_this_run(
    context: AssetExecutionContext, keys: Sequence[str], assets: Sequence[AssetKey]
) -> frozenset[str]:
    """The partitions of ``keys`` that an earlier attempt of this run, or the run it
    re-executes, already materialized for every one of ``assets``.

    A step retry or a re-execution from failure works the same range again; the ledger
    would make it reuse everything anyway, but without this it would report those
    partitions a second time. Only asked on a retry or a re-execution.
    """
    run = context.run
    if context.retry_number == 0 and not run.parent_run_id:
        return frozenset()
    wanted = set(keys)
    seen: dict[AssetKey, set[str]] = {asset: set() for asset in assets}
    run_id: str | None = run.run_id
    for _ in range(20):  # a re-execution chain is short; bound the walk all the same
        if run_id is None:
            break
        records = context.instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
        ).records
        for record in records:
            event = record.event_log_entry.dagster_event
            if event is None:
                continue
            asset, partition = event.asset_key, event.partition
            if asset in seen and partition in wanted:
                seen[asset].add(str(partition))
        parent = context.instance.get_run_by_id(run_id)
        run_id = parent.parent_run_id if parent is not None else None
    if not assets:
        return frozenset()
    return frozenset(set.intersection(*seen.values()))
