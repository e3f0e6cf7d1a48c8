"""Errors raised by the platform clients.

Every message names the service, the method, the world (when known) and the gRPC status,
so a failed Dagster step says what went wrong without reading a traceback. Secrets never
appear in these messages.
"""

from __future__ import annotations

import grpc

from generia_pipelines.errors import ConfigError, GeneriaError

__all__ = ["ConfigError", "GeneriaError"]  # re-exported: the roots live in errors.py


class RpcError(GeneriaError):
    """A gRPC call failed after the retries it was allowed (a later attempt may pass)."""

    def __init__(
        self,
        service: str,
        method: str,
        code: grpc.StatusCode,
        details: str,
        *,
        world_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.service = service
        self.method = method
        self.code = code
        self.details = details
        self.world_id = world_id
        self.attempts = attempts
        where = f" for world {world_id!r}" if world_id else ""
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"{service}.{method}{where} failed with {code.name}{tries}: {details}")


class InvalidArgument(RpcError):
    """The platform rejected the request's content (INVALID_ARGUMENT)."""

    retryable = False


class NotFound(RpcError):
    """The world, character, media or post does not exist (NOT_FOUND)."""

    retryable = False


class PermissionDenied(RpcError):
    """The platform refused the call (PERMISSION_DENIED or UNAUTHENTICATED)."""

    retryable = False


class Unimplemented(RpcError):
    """The service does not serve this method (UNIMPLEMENTED): an older or other revision."""

    retryable = False


class Unavailable(RpcError):
    """A transient status (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) outlived retries."""

    retryable = True


class UploadError(GeneriaError):
    """A presigned upload failed; names the media id and the HTTP status."""

    def __init__(self, media_id: str, status: int | None, details: str) -> None:
        self.media_id = media_id
        self.status = status
        self.details = details
        shown = f"HTTP {status}" if status is not None else "no HTTP status"
        super().__init__(f"upload of media {media_id} failed ({shown}): {details}")


RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

_BY_CODE: dict[grpc.StatusCode, type[RpcError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: PermissionDenied,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    **{code: Unavailable for code in RETRYABLE_CODES},
}


def rpc_error_class(code: grpc.StatusCode) -> type[RpcError]:
    """The exception class for a gRPC status code (RpcError when none is more specific)."""
    return _BY_CODE.get(code, RpcError)
