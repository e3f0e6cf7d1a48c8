"""Failures the assets raise: whether a retry can help decides whether Dagster retries.

Each error says so itself (``retryable``, see ``errors.py``); here that becomes a Dagster
``Failure`` that is not retried, so a missing world or a refused key fails once, with its
own message, instead of three times under "Exceeded max_retries".
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from dagster import Failure, MetadataValue

from generia_pipelines.units.fanout import StepStopped, StepTallies

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
