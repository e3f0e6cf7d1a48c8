"""Bounded fan-out over a step's units, with per-stage tallies; no Dagster in here.

A unit's failure is recorded and the others go on (their progress is in the ledger). Two
failures stop the whole step instead, since every further unit would meet them too: an
exhausted budget and a ledger that cannot be written. The asset layer turns the tallies
into metadata and a Dagster ``Failure``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from generia_pipelines.budget import BudgetExceeded
from generia_pipelines.units.causes import summarize
from generia_pipelines.units.model import LedgerError, Unit

ItemT = TypeVar("ItemT")
#: Failures after which no unit of the step can succeed: start no further ones.
STOPS_STEP = (BudgetExceeded, LedgerError)


class Outcome(StrEnum):
    CREATED = "created"
    REUSED = "reused"


#: What a unit's stage returns: whether it made something now, and the unit as it stands.
Step = tuple[Outcome, Unit]


@dataclass
class Tally:
    """Per-asset counts shown in the UI: what was made now, reused from before, or failed."""

    created: int = 0
    reused: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def fail(self, key: str, error: BaseException) -> None:
        self.failed[key] = f"{type(error).__name__}: {error}"
        self.errors[key] = error

    def add(self, outcome: Outcome) -> None:
        if outcome is Outcome.CREATED:
            self.created += 1
        else:
            self.reused += 1

    @property
    def total(self) -> int:
        return self.created + self.reused + len(self.failed)

    def summary(self, what: str) -> str:
        """The dominant cause of the failures and its count, e.g. "…: 3 of 8 posts"."""
        return summarize(self.errors, self.total, what)

    def metadata(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "reused": self.reused,
            "failed": len(self.failed),
            "duration_s": round(time.monotonic() - self.started, 3),
        }


class StepStopped(Exception):
    """A failure no further unit can get past; ``tally`` has what was done until then."""

    def __init__(self, cause: BaseException, tally: Tally, what: str) -> None:
        self.cause, self.tally, self.what = cause, tally, what
        reason = "budget exhausted" if isinstance(cause, BudgetExceeded) else "ledger"
        super().__init__(f"{reason}: stopped {what}, finished work is kept: {cause}")


async def fan_out(
    items: Sequence[ItemT],
    key: Callable[[ItemT], str],
    process: Callable[[ItemT], Awaitable[Outcome]],
    *,
    limit: int,
    log: logging.Logger | Any,
    what: str,
) -> Tally:
    """Run ``work`` on every item with at most ``limit`` in flight; collect, don't abort,
    unless a failure in ``STOPS_STEP`` happens (then :class:`StepStopped` once all landed)."""
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
                tally.add(await process(item))
            except STOPS_STEP as exc:
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
        raise StepStopped(stopped[0], tally, what)
    return tally


class StepTallies:
    """Per-stage tallies of a step that takes each item through several stages on its own.

    Each item moves on as soon as its stage is done, so a failure is counted under the stage
    where it happened; ``summary`` then names every stage that had some.
    """

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.tallies = {stage: Tally() for stage in names}

    async def run(self, stage: str, key: str, step: Awaitable[Step]) -> Unit:
        """Run one stage of one unit; count its outcome; return the unit as it now stands."""
        tally = self.tallies[stage]
        try:
            outcome, unit = await step
        except Exception as exc:
            tally.fail(key, exc)
            raise
        tally.add(outcome)
        return unit

    def ok(self, *steps: str) -> bool:
        return not any(self.tallies[stage].failed for stage in steps)

    def failed(self) -> list[tuple[str, Tally]]:
        return [(stage, t) for stage, t in self.tallies.items() if t.failed]

    def errors(self) -> dict[str, BaseException]:
        return {k: e for _, t in self.failed() for k, e in t.errors.items()}

    def summary(self, note: str = "") -> str:
        """Each failed stage's dominant cause and count, ``note``, then the first failures."""
        failed = self.failed()
        parts = [tally.summary(self.names[stage]) for stage, tally in failed]
        sample = "; ".join(f"{k}: {v}" for _, t in failed for k, v in sorted(t.failed.items())[:3])
        return "; ".join(parts) + f" (done ones are kept){note}. First: {sample}"
