"""Runware's settings: declared once, read from ``RUNWARE_*`` once, validated in one place.

:class:`RunwareOptions` declares what a deployment chooses (type, default, description):
the Dagster resource ``RunwareResource`` takes its fields from it, and the Dagster-free
:class:`RunwareSettings` adds the client's own tuning. :data:`RUNWARE_VARIABLES` says which
environment variable sets which field, for the resource's ``from_env`` and for
:meth:`RunwareSettings.from_env` alike. :meth:`RunwareSettings.validate` checks them all
before any connection, naming the bad setting.
"""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from generia_pipelines.errors import ConfigError
from generia_pipelines.settings_env import parse_flag

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
FORMAT_INFO: Final[dict[str, tuple[str, str, str]]] = {
    "PNG": ("image/png", ".png", "PNG"),
    "JPG": ("image/jpeg", ".jpg", "JPEG"),
    "WEBP": ("image/webp", ".webp", "WEBP"),
}
_AIR_ID = re.compile(r"^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+$")
_TIMEOUTS: Final = (
    "connect_timeout_s",
    "request_timeout_s",
    "enhance_timeout_s",
    "download_timeout_s",
    "close_timeout_s",
)


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


def parse_usd(variable: str, text: str) -> float:
    """A price from the environment (blank: the list price); a typo fails setup."""
    if not text.strip():
        return DEFAULT_IMAGE_USD
    try:
        price = float(text.strip())
    except ValueError:
        raise ConfigError(f"{variable}={text!r} is not a number of USD") from None
    problem = usd_problem(price)
    if problem:
        raise ConfigError(f"{variable}={text!r} {problem}")
    return price


def size_problem(name: str, value: int) -> str | None:
    """Why a width or height would be rejected by Runware, or None when it is fine."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name}={value!r} must be an integer"
    if not MIN_SIDE <= value <= MAX_SIDE or value % SIDE_STEP:
        return f"{name}={value} must be a multiple of {SIDE_STEP} between {MIN_SIDE} and {MAX_SIDE}"
    return None


def _verbatim(variable: str, text: str) -> str:
    return text


#: The API key's variable. It is read apart from :data:`RUNWARE_VARIABLES`: the Dagster
#: resource takes it through ``EnvVar``, so it is never shown.
API_KEY_VARIABLE: Final = "RUNWARE_API_KEY"
#: ``RUNWARE_*`` variable -> the field it sets and how its text is read.
RUNWARE_VARIABLES: Final[Mapping[str, tuple[str, Callable[[str, str], object]]]] = {
    "RUNWARE_URL": ("url", _verbatim),
    "RUNWARE_IMAGE_MODEL": ("image_model", _verbatim),
    "RUNWARE_ENHANCE_PROMPT": ("enhance_prompt", parse_flag),
    "RUNWARE_IMAGE_USD": ("image_usd", parse_usd),
}


def runware_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The fields the ``RUNWARE_*`` variables set; an unset or empty one keeps its default."""
    return {
        field: parse(variable, environ[variable])
        for variable, (field, parse) in RUNWARE_VARIABLES.items()
        if environ.get(variable)
    }


class RunwareOptions(BaseModel):
    """The Runware settings a deployment chooses, each declared here only.

    The Dagster resource's configuration is these fields; :class:`RunwareSettings` inherits
    them too. Values are checked by :meth:`RunwareSettings.validate`, not here, so a bad one
    fails with a message naming it.
    """

    api_key: str = Field(
        repr=False,
        description="Runware API key; wire it as EnvVar('RUNWARE_API_KEY') so it is never shown",
    )
    url: str = Field(default=DEFAULT_RUNWARE_URL, description="WebSocket URL (RUNWARE_URL)")
    # The client's callers know it as ``model`` (which wins when both are given, so an
    # override beats the environment); the resource's configuration as image_model.
    image_model: str = Field(
        default=DEFAULT_IMAGE_MODEL,
        validation_alias=AliasChoices("model", "image_model"),
        description="Model AIR id (RUNWARE_IMAGE_MODEL)",
    )
    enhance_prompt: bool = Field(
        default=False,
        description="Run promptEnhance before imageInference (RUNWARE_ENHANCE_PROMPT)",
    )
    width: int = Field(default=512, description="Multiple of 64 within 128..2048")
    height: int = Field(default=512, description="Multiple of 64 within 128..2048")
    negative_prompt: str = Field(default=DEFAULT_NEGATIVE_PROMPT)
    output_format: str = Field(default="PNG", description="PNG, JPG or WEBP")
    output_type: str = Field(
        default="base64Data", description="How bytes travel: base64Data, dataURI or URL"
    )
    check_content: bool = Field(default=True, description="Ask Runware to flag NSFW results")
    concurrency: int = Field(default=10, description="Image calls in flight per run")
    connect_timeout_s: float = Field(default=20.0, description="Bound on connect + auth")
    request_timeout_s: float = Field(default=120.0, description="Bound on one imageInference")
    enhance_timeout_s: float = Field(default=60.0, description="Bound on one promptEnhance")
    download_timeout_s: float = Field(default=30.0, description="Bound on one imageURL download")
    max_attempts: int = Field(default=4, description="Tries per call for transient failures")
    backoff_initial_s: float = Field(default=0.5)
    backoff_max_s: float = Field(default=8.0)
    image_usd: float = Field(
        default=DEFAULT_IMAGE_USD,
        description="List price of one image in USD, charged when Runware reports no cost "
        "(RUNWARE_IMAGE_USD)",
    )


class RunwareSettings(RunwareOptions):
    """Everything a ``RunwareImages`` needs; validated before any connection."""

    model_config = ConfigDict(frozen=True)

    close_timeout_s: float = 5.0
    enhance_max_length: int = 300
    # One version by default: the SDK returns a set, so with several versions identical
    # texts collapse and the cost they reported is lost from the total.
    enhance_versions: int = 1
    #: Total time a call may spend failing to open a connection before it gives up (a full
    #: outage): connect retries stop when another attempt could end past this budget.
    connect_budget_s: float = 50.0

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> RunwareSettings:
        """Settings from ``RUNWARE_*`` variables (outside Dagster); keyword overrides win."""
        env = os.environ if environ is None else environ
        values = {"api_key": env.get(API_KEY_VARIABLE, ""), **runware_environment(env)}
        settings = cls(**{**values, **overrides})
        settings.validate()
        return settings

    @property
    def model(self) -> str:
        """The image model's AIR id (``image_model``)."""
        return self.image_model

    @property
    def content_type(self) -> str:
        return FORMAT_INFO[self.output_format][0]

    @property
    def extension(self) -> str:
        return FORMAT_INFO[self.output_format][1]

    def validate(self) -> None:  # type: ignore[override]  # not pydantic's deprecated one
        """Fail at setup, naming the setting, rather than deep inside a run (key never shown)."""
        self._validate_endpoint()
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
        self._validate_limits()

    def _validate_endpoint(self) -> None:
        if not self.api_key or not self.api_key.strip():
            raise ConfigError(f"{API_KEY_VARIABLE} is not set: give the Runware API key")
        problem = url_problem(self.url)
        if problem:
            raise ConfigError(f"RUNWARE_URL={self.url!r} {problem}")
        if not _AIR_ID.match(self.image_model or ""):
            raise ConfigError(
                f"RUNWARE_IMAGE_MODEL={self.image_model!r} is not a model AIR id "
                f"like {DEFAULT_IMAGE_MODEL}"
            )

    def _validate_limits(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"Runware concurrency must be at least 1, got {self.concurrency}")
        if self.max_attempts < 1:
            raise ConfigError(f"Runware max_attempts must be at least 1, got {self.max_attempts}")
        for name in _TIMEOUTS:
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
