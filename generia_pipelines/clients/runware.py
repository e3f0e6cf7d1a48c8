"""Image generation through the real ``runware`` SDK (0.5.x), free of Dagster.

The SDK has traps (DESIGN.md section 6) that this module absorbs in one place:

- it is imported lazily, once, by :func:`runware_sdk`: the import reads its timeouts and
  in-flight cap from the environment and resets global logging (asyncio's logger to
  CRITICAL); we raise the cap for the import and restore the loggers afterwards;
- ``connect()`` may wait forever (no auth reply) and returns silently on a bad key: it is
  bounded by ``asyncio.wait_for`` and a rejected key becomes a :class:`ConfigError`;
- the SDK writes the taskUUID back into the request object: one fresh request per call;
- its semaphore binds to the event loop: one :class:`RunwareImages` (one SDK client) per loop;
- with ``numberResults>1`` a timeout silently returns fewer images: we always ask for one;
- ``promptEnhance`` returns a set: the texts are sorted and the first one is used;
- errors arrive as ``RunwareAPIError`` (with ``.code``) or ``ConnectionError``: transient
  ones are retried with backoff (tenacity), request errors are not.

Never paying twice (DESIGN.md section 4): :meth:`RunwareImages.run_task` runs exactly one
image task under a taskUUID the caller wrote down first. Retries resubmit that taskUUID;
Runware answers a used one with ``conflictTaskUUID`` (nothing billed) and the result already
billed is fetched with ``getResponse``. Every :class:`RunwareError` says in ``billed``
whether Runware charged for it (False / True / None = unknown).

The API key never appears in our messages, reprs or logs: a logging filter scrubs it from
the SDK's and websockets' loggers, whose debug output would otherwise carry it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import functools
import hashlib
import io
import logging
import math
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType, TracebackType
from typing import Any, Final, Literal, Self, TypeVar, cast, get_args

import httpx
from PIL import Image, UnidentifiedImageError
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

from generia_pipelines.clients.errors import ConfigError, GeneriaError
from generia_pipelines.settings_env import parse_flag

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RUNWARE_URL: Final = "wss://ws-api.runware.ai/v1"
DEFAULT_IMAGE_MODEL: Final = "runware:100@1"
DEFAULT_NEGATIVE_PROMPT: Final = (
    "blurry, out of focus, low quality, deformed, disfigured, bad anatomy, extra limbs, "
    "mutated hands, text, letters, caption, watermark, signature, logo"
)
#: Runware's list price of one image with the default model (USD), charged when no cost is
#: reported.
DEFAULT_IMAGE_USD: Final = 0.0006
MIN_SIDE: Final = 128
MAX_SIDE: Final = 2048
SIDE_STEP: Final = 64
MAX_SEED: Final = 9_223_372_036_854_775_807
MAX_PROMPT_CHARS: Final = 3000

OutputFormat = Literal["PNG", "JPG", "WEBP"]
OutputType = Literal["URL", "base64Data", "dataURI"]
OUTPUT_FORMATS: Final[tuple[str, ...]] = get_args(OutputFormat)
OUTPUT_TYPES: Final[tuple[str, ...]] = get_args(OutputType)

# outputFormat -> (content type, file extension, Pillow's name for the decoded format)
_FORMAT_INFO: Final[dict[str, tuple[str, str, str]]] = {
    "PNG": ("image/png", ".png", "PNG"),
    "JPG": ("image/jpeg", ".jpg", "JPEG"),
    "WEBP": ("image/webp", ".webp", "WEBP"),
}

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

_SDK_CAP_VARIABLE: Final = "RUNWARE_MAX_CONCURRENT_REQUESTS"
# Our own semaphore is the real limit; the SDK's per-client cap (15 by default) only has to
# stay out of the way, so it is raised for the import unless the user chose a value.
_SDK_CAP_FOR_IMPORT: Final = 1024
_AIR_ID = re.compile(r"^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+$")


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- settings


def url_problem(url: object) -> str | None:
    """Why ``url`` is no usable Runware WebSocket URL, or None when it is fine."""
    if not isinstance(url, str) or not url.strip():
        return "is empty: give a ws:// or wss:// URL"
    if url != url.strip() or any(c.isspace() for c in url):
        return "contains whitespace"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "has an invalid port: it must be a number within 1..65535"
    if parts.scheme not in ("ws", "wss"):
        return "is not a ws:// or wss:// URL"
    if not parts.hostname:
        return "has no host"
    if port is not None and not 1 <= port <= 65535:
        return "has an invalid port: it must be a number within 1..65535"
    return None


def usd_problem(value: object) -> str | None:
    """Why ``value`` is no valid price in USD, or None when it is fine."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number of USD >= 0"
    if not math.isfinite(value) or value < 0:
        return "must be a number of USD >= 0"
    return None


def parse_usd(value: str | None, variable: str, default: float = DEFAULT_IMAGE_USD) -> float:
    """A price from the environment (unset or empty: ``default``); a typo fails setup."""
    if value is None or not value.strip():
        return default
    try:
        price = float(value.strip())
    except ValueError:
        raise ConfigError(f"{variable}={value!r} is not a number of USD") from None
    problem = usd_problem(price)
    if problem:
        raise ConfigError(f"{variable}={value!r} {problem}")
    return price


def size_problem(name: str, value: int) -> str | None:
    """Why a width or height would be rejected by Runware, or None when it is fine."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name}={value!r} must be an integer"
    if not MIN_SIDE <= value <= MAX_SIDE or value % SIDE_STEP:
        return f"{name}={value} must be a multiple of {SIDE_STEP} between {MIN_SIDE} and {MAX_SIDE}"
    return None


@dataclass(frozen=True, kw_only=True)
class RunwareSettings:
    """Everything a :class:`RunwareImages` needs; validated before any connection."""

    api_key: str = field(repr=False)
    url: str = DEFAULT_RUNWARE_URL
    model: str = DEFAULT_IMAGE_MODEL
    enhance_prompt: bool = False
    width: int = 512
    height: int = 512
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    output_format: OutputFormat = "PNG"
    output_type: OutputType = "base64Data"
    check_content: bool = True
    concurrency: int = 10
    connect_timeout_s: float = 20.0
    request_timeout_s: float = 120.0
    enhance_timeout_s: float = 60.0
    download_timeout_s: float = 30.0
    close_timeout_s: float = 5.0
    max_attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    enhance_max_length: int = 300
    # One version by default: the SDK returns a set, so with several versions identical
    # texts collapse and the cost they reported is lost from the total.
    enhance_versions: int = 1
    #: List price of one image (USD), charged when Runware reports no cost (RUNWARE_IMAGE_USD).
    image_usd: float = DEFAULT_IMAGE_USD
    #: Total time a call may spend failing to open a connection before it gives up (a full
    #: outage): connect retries stop when another attempt could end past this budget.
    connect_budget_s: float = 50.0

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> RunwareSettings:
        """Settings from ``RUNWARE_*`` variables (outside Dagster); keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "api_key": env.get("RUNWARE_API_KEY", ""),
            "url": env.get("RUNWARE_URL") or DEFAULT_RUNWARE_URL,
            "model": env.get("RUNWARE_IMAGE_MODEL") or DEFAULT_IMAGE_MODEL,
            "enhance_prompt": parse_flag(
                "RUNWARE_ENHANCE_PROMPT", env.get("RUNWARE_ENHANCE_PROMPT", "false")
            ),
            "image_usd": parse_usd(env.get("RUNWARE_IMAGE_USD"), "RUNWARE_IMAGE_USD"),
        }
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    @property
    def content_type(self) -> str:
        return _FORMAT_INFO[self.output_format][0]

    @property
    def extension(self) -> str:
        return _FORMAT_INFO[self.output_format][1]

    def validate(self) -> None:
        """Fail at setup, naming the setting, rather than deep inside a run (key never shown)."""
        if not self.api_key or not self.api_key.strip():
            raise ConfigError("RUNWARE_API_KEY is not set: give the Runware API key")
        problem = url_problem(self.url)
        if problem:
            raise ConfigError(f"RUNWARE_URL={self.url!r} {problem}")
        if not _AIR_ID.match(self.model or ""):
            raise ConfigError(
                f"RUNWARE_IMAGE_MODEL={self.model!r} is not a model AIR id "
                f"like {DEFAULT_IMAGE_MODEL}"
            )
        for name, value in (("width", self.width), ("height", self.height)):
            problem = size_problem(name, value)
            if problem:
                raise ConfigError(f"Runware image {problem}")
        if self.output_format not in OUTPUT_FORMATS:
            raise ConfigError(
                f"Runware output_format={self.output_format!r} must be one of {OUTPUT_FORMATS}"
            )
        if self.output_type not in OUTPUT_TYPES:
            raise ConfigError(
                f"Runware output_type={self.output_type!r} must be one of {OUTPUT_TYPES}"
            )
        if self.concurrency < 1:
            raise ConfigError(f"Runware concurrency must be at least 1, got {self.concurrency}")
        if self.max_attempts < 1:
            raise ConfigError(f"Runware max_attempts must be at least 1, got {self.max_attempts}")
        for name in (
            "connect_timeout_s",
            "request_timeout_s",
            "enhance_timeout_s",
            "download_timeout_s",
            "close_timeout_s",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"Runware {name} must be positive, got {getattr(self, name)}")
        if self.backoff_initial_s < 0 or self.backoff_max_s < self.backoff_initial_s:
            raise ConfigError("Runware backoff needs 0 <= backoff_initial_s <= backoff_max_s")
        if not 12 <= self.enhance_max_length <= 400:
            raise ConfigError("Runware enhance_max_length must be within 12..400")
        if not 1 <= self.enhance_versions <= 5:
            raise ConfigError("Runware enhance_versions must be within 1..5")
        if usd_problem(self.image_usd):
            raise ConfigError(f"RUNWARE_IMAGE_USD={self.image_usd!r} {usd_problem(self.image_usd)}")
        if not self.connect_budget_s > 0:
            raise ConfigError(
                f"Runware connect_budget_s must be positive, got {self.connect_budget_s}"
            )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GeneratedImage:
    """One validated image, ready to upload with its true content type, extension and size."""

    data: bytes = field(repr=False)
    content_type: str
    extension: str
    width: int
    height: int
    seed: int
    cost_usd: float | None
    prompt: str
    enhanced_prompt: str | None
    task_uuid: str
    model: str
    image_uuid: str = ""
    enhance_cost_usd: float | None = None
    # Paid for but not used: images flagged NSFW or whose bytes failed validation.
    discarded_cost_usd: float = 0.0
    regenerated_for_nsfw: bool = False
    #: True when the image was not generated by this call but fetched with ``getResponse``:
    #: its taskUUID had been submitted before (a re-run after a crash, a lost answer), so
    #: Runware answered ``conflictTaskUUID`` and this is the result already billed.
    resumed: bool = False

    @property
    def size_bytes(self) -> int:
        return len(self.data)

    @property
    def total_cost_usd(self) -> float | None:
        """Everything this image cost, enhancement and discarded attempts included."""
        parts = [self.cost_usd, self.enhance_cost_usd]
        if all(p is None for p in parts) and not self.discarded_cost_usd:
            return None
        return sum(p for p in parts if p is not None) + self.discarded_cost_usd


@dataclass
class _Inference:
    data: bytes
    seed: int
    cost: float | None
    nsfw: bool
    task_uuid: str
    image_uuid: str
    resumed: bool = False


@dataclass(eq=False)
class _Connection:
    """One SDK client and the calls running on it.

    A retired client is disposed only when its last call ends: disconnecting an SDK client
    under running calls sends them into the SDK's own reconnect loop on a shut-down client.
    """

    client: Any
    in_flight: int = 0
    retired: bool = False


# --------------------------------------------------------------------------- the SDK


_sdk_lock = threading.Lock()
_sdk_module: ModuleType | None = None
_secrets: set[str] = set()
_API_KEY_FIELD = re.compile(r"""(['"]apiKey['"]\s*:\s*['"])[^'"]*""")


def _remember_secret(secret: str) -> None:
    # A key of a few characters cannot be hidden, only garble every message that has them.
    if len(secret) >= 4:
        _secrets.add(secret)


def redact(text: str) -> str:
    """``text`` without any API key this process has used (and no apiKey field value)."""
    for secret in tuple(_secrets):
        if secret:
            text = text.replace(secret, "***")
    return _API_KEY_FIELD.sub(r"\1***", text)


class _RedactSecrets(logging.Filter):
    """Scrubs API keys from records; the SDK logs whole messages, auth included, at debug."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_REDACTED_LOGGERS: Final = ("runware", "runware.base", "runware.utils", "websockets.client")


@contextlib.contextmanager
def preserved_global_logging() -> Iterator[None]:
    """Undo what the SDK does to shared loggers on import and on every client construction."""
    names = ("asyncio", "websockets")
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, logger.propagate, list(logger.handlers))
    try:
        yield
    finally:
        for name, (level, propagate, handlers) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.propagate = propagate
            logger.handlers[:] = handlers


_preserved_global_logging = preserved_global_logging  # the name other modules imported first


def runware_sdk() -> ModuleType:
    """The ``runware`` module, imported once with the environment and logging it needs."""
    global _sdk_module
    with _sdk_lock:
        if _sdk_module is not None:
            return _sdk_module
        first_import = "runware" not in sys.modules
        set_cap = first_import and _SDK_CAP_VARIABLE not in os.environ
        if set_cap:
            os.environ[_SDK_CAP_VARIABLE] = str(_SDK_CAP_FOR_IMPORT)
        try:
            with preserved_global_logging():
                import runware
        finally:
            if set_cap:
                os.environ.pop(_SDK_CAP_VARIABLE, None)
        for name in _REDACTED_LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, _RedactSecrets) for f in logger.filters):
                logger.addFilter(_RedactSecrets())
        _sdk_module = runware
        return runware


_tracked_class: type | None = None


def _client_class() -> type:
    """The SDK client, subclassed to remember every socket it opens.

    After a dropped connection the SDK reconnects twice (its retry loop, then a background
    task a second later); the first socket is orphaned and ``disconnect()`` never closes it.
    """
    global _tracked_class
    if _tracked_class is None:
        sdk = runware_sdk()

        class TrackedRunware(sdk.Runware):  # type: ignore[name-defined]  # untyped SDK
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.opened_sockets: list[Any] = []
                #: taskUUIDs whose results the SDK fetched with getResponse (itself, after
                #: a conflictTaskUUID on its own resend, or for our getResponse call).
                self.polled_task_uuids: set[str] = set()

            async def _pollResults(self, task_uuid: str, *args: Any, **kwargs: Any) -> Any:
                self.polled_task_uuids.add(task_uuid)
                return await super()._pollResults(task_uuid, *args, **kwargs)

            async def connect(self) -> None:
                try:
                    await super().connect()
                finally:
                    ws = getattr(self, "_ws", None)
                    self.opened_sockets = [
                        known
                        for known in self.opened_sockets
                        if known is not ws and getattr(known.state, "name", "") != "CLOSED"
                    ]
                    if ws is not None:
                        self.opened_sockets.append(ws)

        _tracked_class = TrackedRunware
    return _tracked_class


def new_sdk_client(api_key: str, url: str = DEFAULT_RUNWARE_URL) -> Any:
    """A socket-tracking SDK client, built without disturbing global logging.

    Its key is registered for redaction. Connect it with ``asyncio.wait_for`` (connect can
    wait forever) and release it with :func:`close_sdk_client`.
    """
    _remember_secret(api_key)
    with preserved_global_logging():
        return _client_class()(api_key=api_key, url=url)


async def close_sdk_client(client: Any, timeout_s: float = 5.0) -> None:
    """Disconnect and close every socket the client opened, orphans included (bounded)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.disconnect(), timeout_s)
    for ws in getattr(client, "opened_sockets", ()):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), timeout_s)


def _sdk_in_flight_cap() -> int:
    runware_sdk()
    base = sys.modules.get("runware.base")
    return int(getattr(base, "MAX_CONCURRENT_REQUESTS", 15))


def _next_seed(seed: int) -> int:
    """A different seed derived from the last one, so a regeneration stays reproducible."""
    digest = hashlib.sha256(f"generia-regenerate:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % MAX_SEED + 1


def _connect_cause(exc: BaseException, url: str) -> str:
    """The plain reason a connection could not be opened (never the key)."""
    host = urllib.parse.urlsplit(url).hostname or url
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup of {host} failed ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return f"the WebSocket upgrade was refused with HTTP {status}"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    text = redact(str(exc)) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def _api_error(exc: Exception, task_uuid: str | None) -> RunwareError:
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


def _canonical_uuid(value: object) -> str:
    """The taskUUID as Runware expects it (canonical lowercase), or RunwareRequestError."""
    if not isinstance(value, str):
        raise RunwareRequestError(f"taskUUID={value!r} is not a UUID string")
    try:
        parsed = uuid.UUID(value.strip())
    except ValueError:
        raise RunwareRequestError(f"taskUUID={value!r} is not a UUID string") from None
    if len(value.strip()) != 36:  # braces, urn: prefix or no dashes: not what the API takes
        raise RunwareRequestError(f"taskUUID={value!r} is not a canonical UUID string")
    return str(parsed)


def _lookup_failed(exc: RunwareError) -> bool:
    """True when a getResponse error is about the lookup, not the task's own failure."""
    code = (exc.code or "").lower()
    return exc.api_task_type in (None, "getResponse") or "notfound" in code


def _check_image(data: bytes, output_format: str, width: int, height: int) -> None:
    """Raise unless ``data`` decodes fully as ``output_format`` at ``width`` x ``height``."""
    expected = _FORMAT_INFO[output_format][2]
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            actual, size = image.format, image.size
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        # Pillow's message names a BytesIO object by its address: keep only the reason.
        reason = re.sub(r"\s*<[^>]*object at 0x[0-9a-f]+>", "", str(exc)).strip()
        raise RunwareInvalidImage(
            f"returned bytes are not a decodable image ({reason or type(exc).__name__})"
        ) from None
    if actual != expected or size != (width, height):
        raise RunwareInvalidImage(
            f"returned image is not the one asked for: got a {size[0]}x{size[1]} {actual}, "
            f"asked for {width}x{height} {expected}"
        )


class _OutageBudget(stop_base):
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


# --------------------------------------------------------------------------- the client


class RunwareImages:
    """Generates validated images on one event loop with one SDK client.

    Use ``async with RunwareImages(settings) as images: await images.run_task(uuid, ...)``
    (resumable, one task per taskUUID) or ``generate(...)`` (fresh taskUUIDs, regenerates).
    Calls are capped at ``settings.concurrency``; each is bounded by a timeout and
    retried with backoff when the failure is transient.
    """

    def __init__(self, settings: RunwareSettings) -> None:
        settings.validate()
        self.settings = settings
        self.images_generated = 0
        self.cost_usd = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._connection: _Connection | None = None
        #: How often, and how last, a connect failed: shared with the calls waiting for it.
        self._connect_failures = 0
        self._unreachable: RunwareUnreachable | None = None
        self._retired: set[_Connection] = set()
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        _remember_secret(settings.api_key)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._connection is not None else "idle")
        return (
            f"RunwareImages(url={self.settings.url!r}, model={self.settings.model!r}, "
            f"{self.settings.width}x{self.settings.height} {self.settings.output_format}, {state})"
        )

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this instance is bound to (set on first use)."""
        return self._loop

    def _bind(self) -> tuple[asyncio.Semaphore, asyncio.Lock]:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; open a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.settings.concurrency)
            self._connect_lock = asyncio.Lock()
            cap = _sdk_in_flight_cap()
            if cap < self.settings.concurrency:
                log.warning(
                    "runware was imported with %s=%d, below concurrency=%d: the SDK caps it",
                    _SDK_CAP_VARIABLE,
                    cap,
                    self.settings.concurrency,
                )
        elif self._loop is not loop:
            raise RuntimeError(
                "RunwareImages is bound to the event loop it was first used on; the SDK's "
                "semaphore cannot cross loops, so create one instance per event loop"
            )
        assert self._semaphore is not None and self._connect_lock is not None
        return self._semaphore, self._connect_lock

    async def connect(self) -> None:
        """Open and authenticate the connection now (setup errors surface here).

        Calls that were waiting for the connection while an attempt failed get that
        failure at once instead of each trying again in turn: during an outage, ten calls
        in flight would otherwise take ten connect timeouts one after another to give up.
        A call's own retry, made after the failure, tries again.
        """
        _, lock = self._bind()
        failures_seen = self._connect_failures
        async with lock:
            if self._connection is not None:
                return
            if self._connect_failures > failures_seen and self._unreachable is not None:
                raise RunwareUnreachable(self._unreachable.detail)
            try:
                self._connection = _Connection(await self._open_client())
            except RunwareUnreachable as exc:
                self._unreachable = exc
                self._connect_failures += 1
                raise

    async def close(self) -> None:
        """Disconnect (bounded); the instance cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        connections = [*self._retired, *([self._connection] if self._connection else [])]
        self._connection = None
        self._retired.clear()
        for connection in connections:
            await self._dispose(connection.client)
        if self._http is not None:
            http, self._http = self._http, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(http.aclose(), self.settings.close_timeout_s)

    async def _open_client(self) -> Any:
        settings = self.settings
        client = new_sdk_client(settings.api_key, settings.url)
        try:
            await asyncio.wait_for(client.connect(), settings.connect_timeout_s)
        except TimeoutError:
            await self._dispose(client)
            raise RunwareUnreachable(
                f"Runware unreachable at {settings.url}: it did not complete authentication "
                f"within {settings.connect_timeout_s:g}s (connect_timeout_s)"
            ) from None
        except Exception as exc:
            await self._dispose(client)
            raise RunwareUnreachable(
                f"Runware unreachable at {settings.url}: {_connect_cause(exc, settings.url)}"
            ) from None
        except BaseException:
            await self._dispose(client)
            raise
        if not client.isAuthenticated():
            reason = redact(str(getattr(client, "_invalidAPIkey", None) or "no session"))
            await self._dispose(client)
            raise RunwareAuthError(
                f"Runware at {settings.url} rejected the API key from RUNWARE_API_KEY: {reason}"
            )
        log.debug("connected to Runware at %s", settings.url)
        return client

    async def _dispose(self, client: Any) -> None:
        await close_sdk_client(client, self.settings.close_timeout_s)

    def _retire(self, connection: _Connection) -> None:
        """Stop handing out a client the SDK may have wedged; the next call opens a new one."""
        if connection.retired:
            return
        connection.retired = True
        self._retired.add(connection)
        if self._connection is connection:
            self._connection = None
            log.warning("resetting the Runware connection after a failed call")

    @contextlib.asynccontextmanager
    async def _using_client(self) -> AsyncIterator[_Connection]:
        """The current client (opened on demand), counted while a call runs on it."""
        await self.connect()
        connection = self._connection
        if connection is None:  # closed or retired meanwhile by a concurrent failure
            raise RunwareUnavailable("the Runware connection was reset; retrying", billed=False)
        connection.in_flight += 1
        try:
            yield connection
        finally:
            connection.in_flight -= 1
            if connection.retired and connection.in_flight == 0:
                self._retired.discard(connection)
                await self._dispose(connection.client)

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.settings.download_timeout_s, follow_redirects=True
            )
        return self._http

    # -- retries ------------------------------------------------------------------------

    async def _with_retries(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        settings = self.settings

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
                stop=stop_any(stop_after_attempt(settings.max_attempts), _OutageBudget(settings)),
                wait=wait_exponential(
                    multiplier=settings.backoff_initial_s, max=settings.backoff_max_s
                )
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
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _sdk_call(
        self,
        what: str,
        call: Callable[[Any], Awaitable[T]],
        timeout_s: float,
        uuid: Callable[[], str | None],
    ) -> T:
        """One bounded SDK call, its failures mapped onto our error classes.

        Failing to open the connection raises :class:`RunwareUnreachable` (nothing sent,
        ``billed=False``); an API error ``billed=False``; a timeout or a lost connection
        after the request went out ``billed=None``.
        """
        sdk = runware_sdk()
        async with self._using_client() as connection:
            try:
                return await asyncio.wait_for(call(connection.client), timeout_s)
            except TimeoutError:
                self._retire(connection)
                raise RunwareUnavailable(
                    f"Runware {what} did not finish within {timeout_s:g}s", task_uuid=uuid()
                ) from None
            except sdk.RunwareAPIError as exc:
                error = _api_error(exc, uuid())
                if error.code in SESSION_LOST_CODES:
                    self._retire(connection)
                raise error from None
            except ConnectionError as exc:
                # The SDK already reconnected and resent up to its own limit: start afresh.
                self._retire(connection)
                raise RunwareUnavailable(
                    f"lost the connection to Runware at {self.settings.url} during {what}: "
                    f"{redact(str(exc))}",
                    task_uuid=uuid(),
                ) from None
            except Exception as exc:
                # The SDK signals its own timeouts and empty answers with a bare Exception.
                if type(exc) is not Exception:
                    raise
                raise RunwareUnavailable(
                    f"Runware {what} failed: {redact(str(exc))}", task_uuid=uuid()
                ) from None

    # -- prompt enhancement -------------------------------------------------------------

    async def enhance(self, prompt: str) -> tuple[str, float | None]:
        """``promptEnhance``: one enhanced text, chosen deterministically, and its cost."""
        return await self._with_retries(
            "promptEnhance", functools.partial(self._enhance_once, prompt)
        )

    async def _enhance_once(self, prompt: str) -> tuple[str, float | None]:
        sdk = runware_sdk()
        settings = self.settings
        request = sdk.IPromptEnhance(
            prompt=prompt,
            promptMaxLength=settings.enhance_max_length,
            promptVersions=settings.enhance_versions,
            includeCost=True,
        )
        results = await self._sdk_call(
            "promptEnhance",
            lambda client: client.promptEnhance(request),
            settings.enhance_timeout_s,
            lambda: request.taskUUID,
        )
        texts = sorted(
            {r.text.strip() for r in results if getattr(r, "text", None) and r.text.strip()}
        )
        if not texts:
            raise RunwareUnavailable(
                "Runware promptEnhance returned no text", task_uuid=request.taskUUID
            )
        costs = [float(r.cost) for r in results if getattr(r, "cost", None) is not None]
        cost = sum(costs) if costs else None
        if cost:
            self.cost_usd += cost
        return texts[0], cost

    # -- image inference ----------------------------------------------------------------

    def _checked_request(
        self,
        prompt: str,
        seed: int | None,
        width: int | None,
        height: int | None,
        negative_prompt: str | None,
    ) -> tuple[str, int | None, int, int, str]:
        """The call's arguments, validated before anything is sent (RunwareRequestError)."""
        settings = self.settings
        width = settings.width if width is None else width
        height = settings.height if height is None else height
        for name, value in (("width", width), ("height", height)):
            problem = size_problem(name, value)
            if problem:
                raise RunwareRequestError(f"image {problem}")
        text = prompt.strip() if isinstance(prompt, str) else ""
        if not 2 <= len(text) <= MAX_PROMPT_CHARS:
            raise RunwareRequestError(
                f"the prompt must have 2..{MAX_PROMPT_CHARS} characters, got {len(text)}"
            )
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int) or not 1 <= seed <= MAX_SEED
        ):
            raise RunwareRequestError(f"seed={seed!r} must be within 1..{MAX_SEED}")
        negative = settings.negative_prompt if negative_prompt is None else negative_prompt
        return text, seed, width, height, negative

    async def run_task(
        self,
        task_uuid: str,
        prompt: str,
        *,
        seed: int,
        width: int | None = None,
        height: int | None = None,
        negative_prompt: str | None = None,
    ) -> GeneratedImage:
        """Exactly one Runware image task, under the caller's ``task_uuid``.

        Write ``task_uuid`` down before calling: calling again with it (after a crash, a
        timeout, a lost answer) never pays twice. Transient failures are retried with the
        same taskUUID; when Runware answers ``conflictTaskUUID`` (the task was submitted
        before) the result already billed is fetched with ``getResponse`` and returned with
        ``resumed=True``. Nothing is regenerated here: an NSFW flag raises
        :class:`RunwareNSFWError`, an unusable result :class:`RunwareInvalidImage` (both
        ``billed=True``, with the cost reported). The prompt is enhanced first when
        ``enhance_prompt`` is on (a separate, fresh task).
        """
        canonical = _canonical_uuid(task_uuid)
        text, checked_seed, width, height, negative = self._checked_request(
            prompt, seed, width, height, negative_prompt
        )
        if checked_seed is None:
            raise RunwareRequestError(f"seed={seed!r} must be within 1..{MAX_SEED}")
        semaphore, _ = self._bind()
        async with semaphore:
            enhanced, enhance_cost = await self._enhanced(text)
            try:
                image = await self._run_task_unlocked(
                    canonical, text, enhanced, checked_seed, width, height, negative
                )
            except RunwareError as exc:
                exc.enhance_cost_usd = enhance_cost
                raise
            self.images_generated += 0 if image.resumed else 1
            return dataclasses.replace(image, enhance_cost_usd=enhance_cost)

    async def _enhanced(self, text: str) -> tuple[str | None, float | None]:
        if not self.settings.enhance_prompt:
            return None, None
        return await self.enhance(text)

    async def _run_task_unlocked(
        self,
        task_uuid: str,
        text: str,
        enhanced: str | None,
        seed: int,
        width: int,
        height: int,
        negative: str,
    ) -> GeneratedImage:
        settings = self.settings
        result = await self._with_retries(
            "imageInference",
            functools.partial(
                self._task_once, task_uuid, enhanced or text, negative, seed, width, height
            ),
        )
        return GeneratedImage(
            data=result.data,
            content_type=settings.content_type,
            extension=settings.extension,
            width=width,
            height=height,
            seed=result.seed,
            cost_usd=result.cost,
            prompt=text,
            enhanced_prompt=enhanced,
            task_uuid=result.task_uuid,
            model=settings.model,
            image_uuid=result.image_uuid,
            resumed=result.resumed,
        )

    async def generate(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        width: int | None = None,
        height: int | None = None,
        negative_prompt: str | None = None,
    ) -> GeneratedImage:
        """One image for ``prompt`` under fresh taskUUIDs (not resumable: use ``run_task``).

        Enhanced first when configured, validated before return. A result flagged NSFW is
        regenerated once with a seed derived from the first (a second flag raises
        :class:`RunwareNSFWError`); an unusable result is regenerated up to ``max_attempts``
        times. ``paid_usd`` of an error is everything billed anyway (discarded images and
        the enhancement).
        """
        text, checked_seed, width, height, negative = self._checked_request(
            prompt, seed, width, height, negative_prompt
        )
        seed = secrets.randbelow(MAX_SEED) + 1 if checked_seed is None else checked_seed
        semaphore, _ = self._bind()

        async with semaphore:
            enhanced, enhance_cost = await self._enhanced(text)
            discarded = 0.0
            first_seed = seed
            nsfw_rounds = invalid_rounds = 0
            while True:
                try:
                    image = await self._run_task_unlocked(
                        str(uuid.uuid4()), text, enhanced, seed, width, height, negative
                    )
                except RunwareNSFWError as exc:
                    discarded += exc.paid_usd or 0.0
                    nsfw_rounds += 1
                    if nsfw_rounds == 1:
                        log.warning(
                            "Runware flagged image %s (seed %d) as NSFW; regenerating once",
                            exc.task_uuid,
                            seed,
                        )
                        seed = _next_seed(seed)
                        continue
                    error: RunwareError = RunwareNSFWError(
                        f"Runware flagged the image as NSFW twice (seeds {first_seed} and "
                        f"{seed}); not using it",
                        task_uuid=exc.task_uuid,
                    )
                    error.paid_usd = discarded + (enhance_cost or 0.0)
                    error.enhance_cost_usd = enhance_cost
                    raise error from None
                except RunwareInvalidImage as exc:
                    discarded += exc.paid_usd or 0.0
                    invalid_rounds += 1
                    if invalid_rounds < self.settings.max_attempts:
                        log.warning("Runware image unusable, regenerating: %s", exc)
                        continue
                    exc.attempts = invalid_rounds
                    exc.paid_usd = discarded + (enhance_cost or 0.0)
                    exc.enhance_cost_usd = enhance_cost
                    raise
                except RunwareError as exc:
                    # Billed although nothing usable came of it: the caller records it.
                    exc.paid_usd = discarded + (enhance_cost or 0.0)
                    exc.enhance_cost_usd = enhance_cost
                    raise
                self.images_generated += 1
                return dataclasses.replace(
                    image,
                    enhance_cost_usd=enhance_cost,
                    discarded_cost_usd=discarded,
                    regenerated_for_nsfw=nsfw_rounds > 0,
                )

    async def _task_once(
        self, task_uuid: str, prompt: str, negative: str, seed: int, width: int, height: int
    ) -> _Inference:
        """One attempt of the task: submit it, or fetch its result when it was submitted."""
        sdk = runware_sdk()
        settings = self.settings
        # Fresh per call: the SDK writes its taskUUID into the request object.
        request = sdk.IImageInference(
            taskUUID=task_uuid,
            model=settings.model,
            positivePrompt=prompt,
            negativePrompt=negative or None,
            width=width,
            height=height,
            seed=seed,
            numberResults=1,
            outputType=settings.output_type,
            outputFormat=settings.output_format,
            includeCost=True,
            safety=sdk.ISafety(checkContent=True) if settings.check_content else None,
        )

        async def submit(client: Any) -> tuple[Any, bool]:
            images = await client.imageInference(request)
            # The SDK resolves a conflict on its own resend by polling getResponse itself.
            polled: set[str] = getattr(client, "polled_task_uuids", set())
            resumed = task_uuid in polled
            polled.discard(task_uuid)
            return images, resumed

        try:
            images, resumed = await self._sdk_call(
                "imageInference", submit, settings.request_timeout_s, lambda: task_uuid
            )
        except RunwareError as exc:
            if exc.code != "conflictTaskUUID":
                raise
            # Submitted before (a crash, a timeout, a lost answer): fetch what was billed.
            log.info("Runware task %s was submitted before; fetching its result", task_uuid)
            images, resumed = await self._fetch_response(task_uuid), True
        if not isinstance(images, list) or not images:
            raise RunwareUnavailable("Runware returned no image", task_uuid=task_uuid)
        return await self._inference(images[0], task_uuid, seed, width, height, resumed)

    async def _fetch_response(self, task_uuid: str) -> list[Any]:
        """``getResponse(taskUUID)``: the task's result, polled while it is processing."""

        async def fetch(client: Any) -> Any:
            try:
                return await client.getResponse(taskUUID=task_uuid, numberResults=1)
            finally:
                getattr(client, "polled_task_uuids", set()).discard(task_uuid)

        try:
            results = await self._sdk_call(
                "getResponse", fetch, self.settings.request_timeout_s, lambda: task_uuid
            )
        except RunwareRequestError as exc:
            # The lookup failed (taskType getResponse) or the task itself had failed: the
            # same taskUUID would conflict again, so no retry under it.
            exc.detail = f"fetching the result of a resubmitted task failed: {exc.detail}"
            exc.billed = None if _lookup_failed(exc) else False
            raise
        except RunwareUnavailable as exc:
            if exc.billed is False and exc.code:  # the task's own failure, reported again
                exc.retryable = False
            exc.detail = f"fetching the result of a resubmitted task failed: {exc.detail}"
            raise
        return list(results or [])

    async def _inference(
        self, image: Any, task_uuid: str, seed: int, width: int, height: int, resumed: bool
    ) -> _Inference:
        settings = self.settings
        answered_uuid = str(getattr(image, "taskUUID", None) or task_uuid)
        cost = float(image.cost) if getattr(image, "cost", None) is not None else None
        if cost and not resumed:
            self.cost_usd += cost
        result = _Inference(
            data=b"",
            seed=int(getattr(image, "seed", None) or seed),
            cost=cost,
            nsfw=bool(getattr(image, "NSFWContent", False)),
            task_uuid=answered_uuid,
            image_uuid=str(getattr(image, "imageUUID", "") or ""),
            resumed=resumed,
        )
        if result.nsfw:
            raise RunwareNSFWError(
                f"Runware flagged the image (seed {result.seed}) as NSFW; not using it",
                task_uuid=answered_uuid,
                paid_usd=cost,
            )
        try:
            result.data = await self._image_bytes(image, answered_uuid)
            await asyncio.to_thread(
                _check_image, result.data, settings.output_format, width, height
            )
        except RunwareInvalidImage as exc:
            exc.task_uuid = exc.task_uuid or answered_uuid
            exc.billed = True
            exc.paid_usd = cost
            raise
        return result

    async def _image_bytes(self, image: Any, task_uuid: str) -> bytes:
        output_type = self.settings.output_type
        if output_type == "base64Data":
            payload = getattr(image, "imageBase64Data", None)
            if not payload:
                raise RunwareInvalidImage("the result has no imageBase64Data", task_uuid=task_uuid)
            return self._b64(payload, task_uuid)
        if output_type == "dataURI":
            uri = getattr(image, "imageDataURI", None) or ""
            header, sep, payload = uri.partition(",")
            if not uri.startswith("data:") or not sep or ";base64" not in header:
                raise RunwareInvalidImage(
                    "the result has no base64 imageDataURI", task_uuid=task_uuid
                )
            declared = header[5:].split(";", 1)[0]
            if declared != self.settings.content_type:
                raise RunwareInvalidImage(
                    f"the data URI declares {declared!r}, asked for {self.settings.content_type}",
                    task_uuid=task_uuid,
                )
            return self._b64(payload, task_uuid)
        url = getattr(image, "imageURL", None)
        if not url:
            raise RunwareInvalidImage("the result has no imageURL", task_uuid=task_uuid)
        return await self._download(url, task_uuid)

    @staticmethod
    def _b64(payload: str, task_uuid: str) -> bytes:
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RunwareInvalidImage(
                "the result is not valid base64", task_uuid=task_uuid
            ) from None

    async def _download(self, url: str, task_uuid: str) -> bytes:
        """Fetch an imageURL; retried on its own so a flaky download never pays twice."""
        http = self._http_client()

        async def fetch() -> bytes:
            try:
                response = await http.get(url)
            except httpx.HTTPError as exc:
                raise RunwareUnavailable(
                    f"download of the image failed: {type(exc).__name__}", task_uuid=task_uuid
                ) from None
            if response.status_code >= 500 or response.status_code == 429:
                raise RunwareUnavailable(
                    f"download of the image failed with HTTP {response.status_code}",
                    task_uuid=task_uuid,
                )
            if response.status_code != 200:
                raise RunwareInvalidImage(
                    f"download of the image failed with HTTP {response.status_code}",
                    task_uuid=task_uuid,
                )
            return response.content

        try:
            return await self._with_retries("image download", fetch)
        except RunwareUnavailable as exc:
            # The image was paid for; a lost download is an invalid result, not a new outage.
            raise RunwareInvalidImage(exc.detail, task_uuid=task_uuid) from None
