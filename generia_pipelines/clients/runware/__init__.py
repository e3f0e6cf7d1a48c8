"""Image generation through the real ``runware`` SDK (0.5.x), free of Dagster.

The SDK has traps (DESIGN.md section 6) that this package absorbs, each in one module:

- it is imported lazily, once, by :func:`runware_sdk` (:mod:`.sdk`): the import reads its
  timeouts and in-flight cap from the environment and resets global logging (asyncio's
  logger to CRITICAL); we raise the cap for the import and restore the loggers afterwards;
- ``connect()`` may wait forever (no auth reply) and returns silently on a bad key: it is
  bounded by ``asyncio.wait_for`` and a rejected key becomes a :class:`ConfigError`
  (:mod:`.connection`);
- the SDK writes the taskUUID back into the request object: one fresh request per call;
- its semaphore binds to the event loop: one :class:`RunwareImages` (one SDK client) per loop;
- with ``numberResults>1`` a timeout silently returns fewer images: we always ask for one;
- ``promptEnhance`` returns a set: the texts are sorted and the first one is used
  (these four in :mod:`.client`);
- errors arrive as ``RunwareAPIError`` (with ``.code``) or ``ConnectionError``: transient
  ones are retried with backoff (tenacity, :mod:`.retries`), request errors are not
  (:mod:`.errors`).

Never paying twice (DESIGN.md section 4): :meth:`RunwareImages.run_task` runs exactly one
image task under a taskUUID the caller wrote down first. Retries resubmit that taskUUID;
Runware answers a used one with ``conflictTaskUUID`` (nothing billed) and the result already
billed is fetched with ``getResponse``. Every :class:`RunwareError` says in ``billed``
whether Runware charged for it (False / True / None = unknown).

The API key never appears in our messages, reprs or logs: a logging filter scrubs it from
the SDK's and websockets' loggers, whose debug output would otherwise carry it
(:mod:`.redaction`). Settings are declared once, in :mod:`.settings`; images are checked
and downloaded in :mod:`.images`.
"""

from generia_pipelines.clients.runware.client import RunwareImages
from generia_pipelines.clients.runware.errors import (
    SESSION_LOST_CODES,
    TRANSIENT_ERROR_CODES,
    RunwareAuthError,
    RunwareError,
    RunwareInvalidImage,
    RunwareNSFWError,
    RunwareRequestError,
    RunwareUnavailable,
    RunwareUnreachable,
)
from generia_pipelines.clients.runware.images import GeneratedImage
from generia_pipelines.clients.runware.redaction import preserved_global_logging, redact
from generia_pipelines.clients.runware.sdk import close_sdk_client, new_sdk_client, runware_sdk
from generia_pipelines.clients.runware.settings import (
    API_KEY_VARIABLE,
    DEFAULT_IMAGE_MODEL,
    DEFAULT_IMAGE_USD,
    DEFAULT_NEGATIVE_PROMPT,
    DEFAULT_RUNWARE_URL,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_SIDE,
    MIN_SIDE,
    OUTPUT_FORMATS,
    OUTPUT_TYPES,
    RUNWARE_VARIABLES,
    SIDE_STEP,
    OutputFormat,
    OutputType,
    RunwareOptions,
    RunwareSettings,
    parse_usd,
    runware_environment,
    size_problem,
    url_problem,
    usd_problem,
)

__all__ = [
    "API_KEY_VARIABLE",
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_IMAGE_USD",
    "DEFAULT_NEGATIVE_PROMPT",
    "DEFAULT_RUNWARE_URL",
    "MAX_PROMPT_CHARS",
    "MAX_SEED",
    "MAX_SIDE",
    "MIN_SIDE",
    "OUTPUT_FORMATS",
    "OUTPUT_TYPES",
    "RUNWARE_VARIABLES",
    "SESSION_LOST_CODES",
    "SIDE_STEP",
    "TRANSIENT_ERROR_CODES",
    "GeneratedImage",
    "OutputFormat",
    "OutputType",
    "RunwareAuthError",
    "RunwareError",
    "RunwareImages",
    "RunwareInvalidImage",
    "RunwareNSFWError",
    "RunwareOptions",
    "RunwareRequestError",
    "RunwareSettings",
    "RunwareUnavailable",
    "RunwareUnreachable",
    "close_sdk_client",
    "new_sdk_client",
    "parse_usd",
    "preserved_global_logging",
    "redact",
    "runware_environment",
    "runware_sdk",
    "size_problem",
    "url_problem",
    "usd_problem",
]
