"""The status errors the local services raise, and the checks they share.

Service code raises :class:`ServiceError` from plain (even synchronous) functions; the
stack's interceptor turns it into the gRPC status, so the store and validation code does
not need a servicer context.
"""

from __future__ import annotations

import json

import grpc


class ServiceError(Exception):
    """A gRPC status with a message meant for the caller."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.NOT_FOUND, message)


def denied(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.PERMISSION_DENIED, message)


def precondition(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, message)


def require_text(value: str, field: str) -> str:
    """The value stripped of surrounding blanks; INVALID_ARGUMENT when nothing is left."""
    stripped = value.strip()
    if not stripped:
        raise invalid(f"{field} is required")
    return stripped


def require_json(value: str, field: str) -> str:
    """Accept only a parseable JSON document, as the platform's JSONB columns do."""
    try:
        json.loads(value)
    except ValueError as exc:
        raise invalid(f"{field} must be valid JSON: {exc.args[0] if exc.args else exc}") from None
    return value
