"""Runware's settings: the client's configuration, its defaults and their validation."""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from generia_pipelines.clients.errors import ConfigError
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
        return FORMAT_INFO[self.output_format][0]

    @property
    def extension(self) -> str:
        return FORMAT_INFO[self.output_format][1]

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
