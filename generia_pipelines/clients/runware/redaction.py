"""Keeping the API key out of logs, and the SDK's hands off the process's loggers.

The key never appears in our messages, reprs or logs: a logging filter scrubs it from the
SDK's and websockets' loggers, whose debug output would otherwise carry it. Importing the
SDK, and constructing its client, reset shared loggers (asyncio's to CRITICAL):
:func:`preserved_global_logging` puts them back.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Final

#: Every API key this process has used, to be scrubbed wherever text may carry one.
_secrets: set[str] = set()
_API_KEY_FIELD = re.compile(r"""(['"]apiKey['"]\s*:\s*['"])[^'"]*""")
#: The loggers the SDK writes whole messages to, the auth message with its key included.
_REDACTED_LOGGERS: Final = ("runware", "runware.base", "runware.utils", "websockets.client")


def remember_secret(secret: str) -> None:
    """Register a key for :func:`redact`."""
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


def redact_sdk_loggers() -> None:
    """Put the redacting filter on the SDK's loggers (once each)."""
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSecrets) for f in logger.filters):
            logger.addFilter(_RedactSecrets())


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
