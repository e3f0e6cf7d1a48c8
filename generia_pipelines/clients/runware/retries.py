"""Retrying a Runware call: backoff with jitter on transient failures, within an outage budget."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base

from generia_pipelines.clients.runware.errors import (
    RunwareError,
    RunwareUnavailable,
    RunwareUnreachable,
)
from generia_pipelines.clients.runware.redaction import redact
from generia_pipelines.clients.runware.settings import RunwareSettings

# The package's logger, as before it was split: handlers attach to it by that name.
log = logging.getLogger(__package__)

T = TypeVar("T")


class OutageBudget(stop_base):
    """Stop retrying a failed connect when another attempt could end past the budget.

    A full outage (refused, or authentication never answered) must give up within
    ``connect_budget_s`` in total, whatever ``max_attempts`` allows.
    """

    def __init__(self, settings: RunwareSettings) -> None:
        self.settings = settings

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if not isinstance(exc, RunwareUnreachable):
            return False
        s = self.settings
        worst_next = s.backoff_max_s + s.backoff_initial_s + s.connect_timeout_s
        elapsed = retry_state.seconds_since_start or 0.0
        return elapsed + worst_next > s.connect_budget_s


async def with_retries(settings: RunwareSettings, what: str, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, tried again while it fails with a retryable :class:`RunwareError`.

    The error finally raised carries in ``attempts`` how many tries it took.
    """

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "Runware %s attempt %d/%d failed, retrying: %s",
            what,
            state.attempt_number,
            settings.max_attempts,
            redact(str(exc)),
        )

    attempt_number = 0
    try:
        async for attempt in AsyncRetrying(
            stop=stop_any(stop_after_attempt(settings.max_attempts), OutageBudget(settings)),
            wait=wait_exponential(multiplier=settings.backoff_initial_s, max=settings.backoff_max_s)
            + wait_random(0, settings.backoff_initial_s),
            retry=retry_if_exception(lambda e: isinstance(e, RunwareError) and e.retryable),
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                attempt_number = attempt.retry_state.attempt_number
                return await call()
    except RunwareError as exc:
        exc.attempts = attempt_number
        if isinstance(exc, RunwareUnavailable) and exc.billed is False:
            # An outage that outlived the retries, with nothing pending at Runware: trying
            # again soon (a step retry) only waits on it.
            exc.retryable = False
        raise
    raise AssertionError("unreachable: tenacity either returns or raises")
