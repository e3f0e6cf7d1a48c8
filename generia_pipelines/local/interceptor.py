"""What every local RPC goes through: auth, counters, injected faults, idempotency, errors.

One interceptor per gRPC server wraps each unary handler, so the four services share the
platform's cross-cutting behaviour instead of repeating it:

1. count the call; 2. require ``authorization: Bearer <token>`` when a token is configured;
3. apply the injected fault (latency, error before any effect); 4. for mutating methods with
an ``idempotency-key``, replay the stored response or run once and store it; 5. map a
:class:`ServiceError` to its status; 6. optionally answer late or lose the response after
the commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any, cast

import grpc
from google.protobuf.message import Message

from generia_pipelines.local.db import IdempotencyStore
from generia_pipelines.local.errors import ServiceError
from generia_pipelines.local.faults import FaultInjector, qualified_name
from generia_pipelines.local.locks import KeyedLocks
from generia_pipelines.local.stats import CallStats

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_IDEMPOTENCY_KEY = 512

#: Calls with an effect; only these honour ``idempotency-key``.
MUTATING_METHODS = frozenset(
    {
        "character.CreateCharacter",
        "character.UpdateCharacter",
        "media.GetPresignedUploadURL",
        "media.ConfirmUpload",
        "post.CreateAIPost",
        "world.CreateWorld",
        "world.UpdateWorldParams",
        "world.UpdateWorldImage",
    }
)

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class StackInterceptor(grpc.aio.ServerInterceptor):
    """Platform behaviour around the handlers of one service (see the module docstring)."""

    def __init__(
        self,
        *,
        faults: FaultInjector,
        stats: CallStats,
        idempotency: IdempotencyStore,
        token: str | None,
        honour_idempotency: bool,
    ) -> None:
        self._faults = faults
        self._stats = stats
        self._idempotency = idempotency
        self._expected_auth = f"Bearer {token}".encode() if token else None
        self._honour_idempotency = honour_idempotency
        self._locks = KeyedLocks()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = qualified_name(handler_call_details.method)
        metadata = {
            key.lower(): value if isinstance(value, str) else value.decode(errors="replace")
            for key, value in handler_call_details.invocation_metadata or ()
        }
        behavior = cast(Behavior, handler.unary_unary)
        original = handler.response_serializer

        def serialize(response: Any) -> bytes:
            # A replay returns the stored bytes exactly as they were first sent.
            if isinstance(response, bytes):
                return response
            encoded: bytes = original(response) if original else response.SerializeToString()
            return encoded

        async def wrapped(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await self._handle(method, metadata, behavior, serialize, request, context)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=serialize,
        )

    async def _handle(
        self,
        method: str,
        metadata: dict[str, str],
        behavior: Behavior,
        serialize: Callable[[Any], bytes],
        request: Message,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Any:
        self._stats.call(method)
        if self._expected_auth is not None and not hmac.compare_digest(
            metadata.get("authorization", "").encode(), self._expected_auth
        ):
            self._stats.failure(method)
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or invalid bearer token in the 'authorization' metadata",
            )
        decision = self._faults.decide(method)
        if decision.latency_s > 0 and not decision.latency_after_commit:
            await asyncio.sleep(decision.latency_s)
        if decision.error_code is not None:
            self._stats.injected_error(method)
            await context.abort(decision.error_code, f"injected fault on {method}")
        key = metadata.get(IDEMPOTENCY_HEADER, "")
        if key and self._honour_idempotency and method in MUTATING_METHODS:
            response = await self._idempotent(method, key, behavior, serialize, request, context)
        else:
            response = await self._run(method, behavior, request, context)
        if decision.latency_s > 0 and decision.latency_after_commit:
            # Committed, answered late: past the deadline the client sees DEADLINE_EXCEEDED.
            await asyncio.sleep(decision.latency_s)
        if decision.drop_after_commit:
            self._stats.dropped(method)
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"injected fault: {method} response lost after commit"
            )
        return response

    async def _run(
        self,
        method: str,
        behavior: Behavior,
        request: Message,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Any:
        try:
            return await behavior(request, context)
        except ServiceError as exc:
            self._stats.failure(method)
            await context.abort(exc.code, exc.message)

    async def _idempotent(
        self,
        method: str,
        key: str,
        behavior: Behavior,
        serialize: Callable[[Any], bytes],
        request: Message,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Any:
        if len(key) > MAX_IDEMPOTENCY_KEY:
            self._stats.failure(method)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"idempotency-key is longer than {MAX_IDEMPOTENCY_KEY} characters",
            )
        digest = hashlib.sha256(method.encode() + b"\0")
        digest.update(request.SerializeToString(deterministic=True))
        fingerprint = digest.hexdigest()
        async with self._locks.hold(f"{method}\0{key}"):
            stored = self._idempotency.get(method, key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    self._stats.failure(method)
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"idempotency-key reuse: key {key!r} was already used for a different "
                        f"{method.split('.', 1)[1]} request",
                    )
                self._stats.replay(method)
                return stored.response
            response = await self._run(method, behavior, request, context)
            self._idempotency.put(method, key, fingerprint, serialize(response))
            return response
