"""Why units failed, in words a person acts on: the dominant cause first, with its count.

A step whose units failed for one reason should say that reason ("Runware unreachable at
ws://…: connection refused: 3 of 3 avatars"), not a symptom further down ("budget
exhausted") or the first of forty identical tracebacks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from generia_pipelines.clients.errors import GeneriaError, RpcError


class ProviderDown(GeneriaError):
    """A provider is unreachable: this step starts no further calls to it."""

    retryable = False  # retrying now only waits on the same outage

    def __init__(self, cause: str) -> None:
        self.cause = cause
        super().__init__(cause)


class TooManyInvalid(GeneriaError):
    """The provider kept answering with unusable results: this step stops paying for more."""

    retryable = False  # a retry would pay for more of the same

    def __init__(self, cause: str) -> None:
        self.cause = cause
        super().__init__(cause)


class MissingPrerequisite(GeneriaError):
    """An asset was asked for before what it is made from: materialize that first. A retry
    would meet the same gap, so none is made."""

    retryable = False


def cause_of(error: BaseException) -> str:
    """The part of an error that is the same for every unit it hit."""
    if isinstance(error, (ProviderDown, TooManyInvalid)):
        return error.cause
    from generia_pipelines.clients.runware import RunwareError
    from generia_pipelines.units.session import UnitBusy

    if isinstance(error, UnitBusy):
        return f"in progress in run {error.claim.run_id[:8]}, left to it"
    if isinstance(error, RunwareError):
        return error.detail
    if isinstance(error, RpcError):
        return f"{error.service}.{error.method} failed with {error.code.name}"
    detail = getattr(error, "detail", None)
    text = detail if isinstance(detail, str) and detail else str(error)
    name = type(error).__name__
    # Unit keys and ids vary per unit; the cause is what precedes them.
    for marker in (" [code=", " [taskUUID=", " for posts/", " for characters/", " for avatars/"):
        text = text.split(marker, 1)[0]
    return f"{name}: {text[:300]}"


def summarize(errors: Mapping[str, BaseException], total: int, what: str) -> str:
    """ "<dominant cause>: N of M <what>" plus the other causes with their counts."""
    if not errors:
        return ""
    counts = Counter(cause_of(error) for error in errors.values())
    (top, top_count), *others = counts.most_common()
    text = f"{top}: {top_count} of {total} {what}"
    if others:
        rest = "; ".join(f"{count} × {cause}" for cause, count in others[:4])
        text += f" (also {rest})"
    return text
