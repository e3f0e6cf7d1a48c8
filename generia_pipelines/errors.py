"""The roots of the pipeline's own errors, importable by every layer (they import nothing).

Every error says whether a retry can help (``retryable``): the clients retry what can pass,
and a Dagster step is not retried for an error that would only repeat.
"""

from __future__ import annotations


class GeneriaError(Exception):
    """Base of every error raised by the pipeline's own code."""

    #: Whether trying again later (another attempt, a step retry) can succeed.
    retryable = True


class ConfigError(GeneriaError):
    """A setting is missing or invalid; raised at setup and names the variable."""

    retryable = False
