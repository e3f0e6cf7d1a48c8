"""One step attempt's claims: a lease per unit it works on, renewed while it runs.

``async with ClaimSession(ledger, holder) as claims:`` then ``await claims.acquire(key)``
before a unit's first paid or remote step. Another run's live lease is waited for (bounded,
polling the ledger): if that run finishes the unit meanwhile there is nothing left to do,
otherwise the unit is left to it and reported as in progress there. Leases are renewed in
the background and released together when the session ends; a session whose process dies
leaves leases that expire (or that a run on the same host takes over at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from generia_pipelines.aio import AsyncClosing
from generia_pipelines.errors import GeneriaError
from generia_pipelines.units.claims import Claim, Holder

if TYPE_CHECKING:
    from generia_pipelines.ledger import Ledger

log = logging.getLogger(__name__)

#: Lease time: a holder that stops renewing is presumed dead after this long.
DEFAULT_LEASE_TTL_S = 60.0
#: How long a unit leased by another live run is waited for before it is left to that run.
DEFAULT_LEASE_WAIT_S = 90.0


class UnitBusy(GeneriaError):
    """Another live run holds the unit's lease; this run left the unit to it."""

    retryable = False  # the unit is the other run's to finish, not to be fought over

    def __init__(self, claim: Claim, waited_s: float) -> None:
        self.claim = claim
        super().__init__(
            f"{claim.key} is in progress in run {claim.run_id[:8]} (its lease runs until "
            f"{claim.expires_at:%H:%M:%S} UTC; waited {waited_s:.0f}s): left to that run, "
            "which finishes it or, if it dies, frees it when the lease expires"
        )


class LeaseLost(GeneriaError):
    """This run's lease on a unit expired and another run took it: stop before paying."""


@dataclass
class ClaimStats:
    """What the session met, for the step's metadata and the benchmarks."""

    claimed: int = 0
    waited: int = 0
    finished_by_others: int = 0
    left_busy: int = 0
    took_over: list[str] = field(default_factory=list)


class ClaimSession(AsyncClosing):
    """Leases of one step attempt; see the module docstring."""

    def __init__(
        self,
        ledger: Ledger,
        holder: Holder,
        *,
        ttl_s: float = DEFAULT_LEASE_TTL_S,
        wait_s: float = DEFAULT_LEASE_WAIT_S,
        poll_s: float = 0.5,
        logger: Any = None,
    ) -> None:
        if ttl_s <= 0 or wait_s < 0 or poll_s <= 0:
            raise ValueError("lease ttl and poll must be > 0 and wait >= 0")
        self.ledger = ledger
        self.holder = holder
        self.ttl_s, self.wait_s, self.poll_s = ttl_s, wait_s, poll_s
        self.log = logger or log
        self.stats = ClaimStats()
        self._held: set[str] = set()
        self._renewed_at = time.monotonic()
        self._renewer: asyncio.Task[None] | None = None

    async def open(self) -> Self:
        self._renewer = asyncio.create_task(self._renew_forever())
        return self

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        if self._held:
            try:
                self.ledger.release_claims(self.holder)
            except GeneriaError as error:  # they expire on their own
                self.log.warning(f"could not release this run's leases: {error}")
            self._held.clear()

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            if not self._held:
                self._renewed_at = time.monotonic()
                continue
            try:
                started = time.monotonic()
                await asyncio.to_thread(self.ledger.renew, self.holder, ttl_s=self.ttl_s)
                self._renewed_at = started
            except GeneriaError as error:
                self.log.warning(f"could not renew this run's leases: {error}")

    def holds(self, key: str) -> bool:
        return key in self._held

    async def acquire(self, key: str, finished: Callable[[], bool] | None = None) -> bool:
        """Hold ``key``'s lease. False: while we waited, its holder finished the unit.

        Raises :class:`UnitBusy` when another live run still holds it after ``wait_s``.
        """
        if key in self._held:
            return True
        started = time.monotonic()
        waited = False
        while True:
            claim = self.ledger.claim(key, self.holder, ttl_s=self.ttl_s)
            if claim.held:
                self._held.add(key)
                self.stats.claimed += 1
                if claim.took_over:
                    self.stats.took_over.append(key)
                    self.log.info(
                        f"{key}: took over from run {claim.took_over[:8]}, whose lease had "
                        "expired or whose process is gone"
                    )
                return True
            if not waited:
                waited = True
                self.stats.waited += 1
                self.log.info(f"{key} is in progress in run {claim.run_id[:8]}; waiting for it")
            if finished is not None and finished():
                self.stats.finished_by_others += 1
                return False
            elapsed = time.monotonic() - started
            if elapsed >= self.wait_s:
                self.stats.left_busy += 1
                raise UnitBusy(claim, elapsed)
            await asyncio.sleep(min(self.poll_s, max(0.01, self.wait_s - elapsed)))

    def ensure(self, key: str) -> None:
        """Before a paid or remote step: make sure the lease on ``key`` is still ours.

        Free while the renewer keeps up (the lease cannot have expired); otherwise one
        conditional write that re-takes it, or :class:`LeaseLost` if another run has it.
        """
        if key not in self._held:
            raise LeaseLost(f"{key}: this run holds no lease on it; refusing to pay for it")
        if time.monotonic() - self._renewed_at < self.ttl_s / 2:
            return
        claim = self.ledger.claim(key, self.holder, ttl_s=self.ttl_s)
        if not claim.held:
            self._held.discard(key)
            raise LeaseLost(
                f"{key}: this run's lease lapsed and run {claim.run_id[:8]} took the unit over; "
                "stopping before any paid or remote call"
            )
