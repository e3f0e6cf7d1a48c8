"""What a failed Runware call raises, and how the SDK's errors map onto it.

Errors arrive from the SDK as ``RunwareAPIError`` (with ``.code``) or ``ConnectionError``:
transient codes are retried with backoff, request errors are not. Every
:class:`RunwareError` says in ``billed`` whether Runware charged for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, cast

from generia_pipelines.clients.runware.redaction import redact
from generia_pipelines.errors import ConfigError, GeneriaError

# Error codes worth another try; every other code (invalid*, unsupported*, credits, ...) is
# a property of the request or the account and would fail the same way again.
TRANSIENT_ERROR_CODES: Final = frozenset(
    {
        "timeoutProvider",
        "timeout",
        "internalServerError",
        "serverError",
        "unknownError",
        "providerError",
        "serviceUnavailable",
        "tooManyRequests",
        "rateLimitExceeded",
    }
)
#: The connection has no authenticated session: after a dropped connection the SDK resends
#: its pending tasks on a new socket before that socket's authentication has completed.
#: Not the request's fault: a fresh connection and a retry fix it.
SESSION_LOST_CODES: Final = frozenset({"missingApiKey"})


class RunwareError(GeneriaError):
    """A Runware call failed; says what, with the API's code and the taskUUID when known.

    ``billed`` says whether Runware charged for the failed call: ``False`` provably not (the
    connection could not be opened, the key was refused, the API rejected the request),
    ``True`` billed (an image came back unusable: invalid bytes, NSFW), ``None`` unknown (the
    request was sent, then the connection dropped or the answer timed out: resubmitting the
    same taskUUID settles it). ``paid_usd`` is the cost Runware reported for what was billed,
    or None when it reported none.
    """

    retryable = False
    #: What a failure of this class says about billing unless the raiser knows better.
    default_billed: bool | None = None

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        task_uuid: str | None = None,
        billed: bool | Literal["default"] | None = "default",
        paid_usd: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.task_uuid = task_uuid
        self.attempts = 1
        self.billed: bool | None = self.default_billed if billed == "default" else billed
        #: The cost Runware reported for what this failed call was billed for (None: none
        #: reported). For ``generate`` the sum over its discarded images and enhancement.
        self.paid_usd: float | None = paid_usd
        #: The cost of the prompt enhancement that preceded the failed image task, if any.
        self.enhance_cost_usd: float | None = None
        #: The ``taskType`` of Runware's error answer, when it named one.
        self.api_task_type: str | None = None

    def __str__(self) -> str:
        extra = [f"code={self.code}"] if self.code else []
        if self.task_uuid:
            extra.append(f"taskUUID={self.task_uuid}")
        if self.attempts > 1:
            extra.append(f"after {self.attempts} attempts")
        return f"{self.detail} [{', '.join(extra)}]" if extra else self.detail


class RunwareRequestError(RunwareError, ValueError):
    """The request itself is invalid (bad size, unknown model...); retrying cannot help.

    Raised before any call, or as Runware's answer: never billed."""

    default_billed = False


class RunwareUnavailable(RunwareError):
    """A transient failure: server error, lost connection, timeout. Retried with backoff.

    ``billed`` is False when Runware answered with an error, None when the answer was lost."""

    retryable = True


class RunwareUnreachable(RunwareUnavailable):
    """The connection could not be opened or authenticated in time: nothing was sent."""

    default_billed = False


class RunwareAuthError(RunwareError, ConfigError):
    """Runware refused the API key: a setup error, and nothing was billed."""

    default_billed = False


class RunwareInvalidImage(RunwareError):
    """The returned result is not the image asked for (bytes, size, format, no data).

    Billed: Runware generated it. ``run_task`` never regenerates; ``generate`` does."""

    default_billed = True


class RunwareNSFWError(RunwareError):
    """Runware flagged the image NSFW (billed). ``generate`` regenerates once first."""

    default_billed = True


def api_error(exc: Exception, task_uuid: str | None) -> RunwareError:
    """Our error for the SDK's ``RunwareAPIError``: transient codes are retryable."""
    data = getattr(exc, "error_data", None)
    info: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    code = cast(str | None, getattr(exc, "code", None) or info.get("code"))
    message = redact(str(info.get("message") or exc))
    parameter = info.get("parameter")
    detail = f"Runware rejected the task: {message}"
    if parameter:
        detail += f" (parameter {parameter})"
    answered_uuid = cast(str | None, info.get("taskUUID")) or task_uuid
    transient = code is not None and (
        code in TRANSIENT_ERROR_CODES
        or code in SESSION_LOST_CODES
        or code.lower().startswith("timeout")
    )
    cls: type[RunwareError] = RunwareUnavailable if transient else RunwareRequestError
    # Runware answered with an error: the task produced nothing and was not billed.
    error = cls(detail, code=code, task_uuid=answered_uuid, billed=False)
    task_type = info.get("taskType")
    error.api_task_type = task_type if isinstance(task_type, str) else None
    return error


def lookup_failed(exc: RunwareError) -> bool:
    """True when a getResponse error is about the lookup, not the task's own failure."""
    code = (exc.code or "").lower()
    return exc.api_task_type in (None, "getResponse") or "notfound" in code
