"""Shared machinery of the async gRPC clients: channel, deadlines, retries, error mapping.

Only transient statuses are retried (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED);
a create call retried after a lost response is safe because it carries the caller's
``idempotency-key``, which the platform uses to return the first result. Where a server
ignores the key, such a retry may have made a second object: the client remembers, per key,
the attempts that failed with a status that may hide a commit (``uncertain_attempts``), so
the caller can report a suspected duplicate.

On ``open()`` the client checks the contract its service serves (``contract.py``) before any
call: where the service has drifted in ways field names can bridge, the affected methods are
rebound to speak the served revision (``transcode.py``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from generia_pipelines.aio import AsyncClosing
from generia_pipelines.clients.contract import (
    CALLED_METHODS,
    ContractMode,
    ContractUnchecked,
    ServiceContract,
    Status,
    compare,
    refuse_if_incompatible,
)
from generia_pipelines.clients.errors import RETRYABLE_CODES, ConfigError, rpc_error_class
from generia_pipelines.clients.reflection import ReflectionUnavailable, served_descriptors
from generia_pipelines.clients.transcode import decoder, encoder

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "idempotency-key"
_ADDRESS = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")

R = TypeVar("R", bound=Message)
T = TypeVar("T")

#: A failed attempt with one of these may still have been committed by the server (the
#: answer was lost, or came after the deadline); RESOURCE_EXHAUSTED is refused up front.
UNCERTAIN_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class ChannelSettings:
    """How to reach one service; validated before any channel is opened."""

    address: str
    tls: bool = False
    ca_file: str | None = None
    token: str | None = field(default=None, repr=False)
    deadline_s: float = 10.0
    max_attempts: int = 5
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 3.0
    address_variable: str = "address"
    contract_mode: ContractMode = ContractMode.WARN

    def validate(self) -> None:
        """Fail early, naming the variable, instead of at the first call deep inside a run."""
        var = self.address_variable
        if not self.address:
            raise ConfigError(f"{var} is not set: give the service's gRPC address as host:port")
        match = _ADDRESS.match(self.address)
        if not match or not 0 < int(match.group("port")) < 65536:
            raise ConfigError(
                f"{var}={self.address!r} is not a valid gRPC address (want host:port)"
            )
        if self.ca_file is not None:
            path = Path(self.ca_file)
            if not path.is_file():
                raise ConfigError(f"GENERIA_GRPC_CA_FILE={self.ca_file!r}: no such file")
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"GENERIA_GRPC_CA_FILE={self.ca_file!r}: unreadable ({exc})"
                ) from exc
            if "-----BEGIN CERTIFICATE-----" not in text:
                raise ConfigError(f"GENERIA_GRPC_CA_FILE={self.ca_file!r}: not a PEM certificate")
        if self.deadline_s <= 0:
            raise ConfigError(f"the per-call deadline must be positive, got {self.deadline_s}")
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def open_channel(self) -> grpc.aio.Channel:
        """An asyncio channel bound to the running event loop."""
        if self.tls or self.ca_file:
            roots = Path(self.ca_file).read_bytes() if self.ca_file else None
            return grpc.aio.secure_channel(
                self.address, grpc.ssl_channel_credentials(root_certificates=roots)
            )
        return grpc.aio.insecure_channel(self.address)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in RETRYABLE_CODES


#: (service, address) pairs already warned about in this process: a drifted or unreflecting
#: service is worth one warning, not one per client (a sensor opens one every tick). Each
#: run's own log gets it from the resource, once per run.
_WARNED: set[tuple[str, str]] = set()


class GrpcClient(AsyncClosing):
    """Base of the service clients: one channel, typed calls with deadline and retries."""

    service = "generia"
    #: The compiled service (the specification); None for a client with no contract.
    descriptor: ServiceDescriptor | None = None

    def __init__(self, settings: ChannelSettings) -> None:
        settings.validate()
        self.settings = settings
        self._channel: grpc.aio.Channel | None = None
        self._uncertain: dict[str, list[str]] = {}
        self.contract = ServiceContract(self.service, Status.OFF)
        self._stub: Any = None

    def uncertain_attempts(self, idempotency_key: str) -> tuple[str, ...]:
        """Statuses of this client's failed attempts, under this key, that may hide a commit.

        Non-empty after a create that was retried (in one call or across calls) following
        UNAVAILABLE or DEADLINE_EXCEEDED: harmless where the server honours the key, a
        possible duplicate where it does not.
        """
        return tuple(self._uncertain.get(idempotency_key, ()))

    def _bind(self, channel: grpc.aio.Channel) -> None:
        """Create the generated stub on the channel; each service overrides this."""

    async def open(self) -> Self:
        """Open the channel and check the served contract; a refused contract closes it."""
        if self._channel is None:
            self._channel = self.settings.open_channel()
            self._bind(self._channel)
            try:
                self.contract = await self._check_contract(self._channel)
            except BaseException:
                await self.close()
                raise
        return self

    async def _check_contract(self, channel: grpc.aio.Channel) -> ServiceContract:
        """Compare the served contract with ours (per the mode) and bridge what names can."""
        mode = self.settings.contract_mode
        if self.descriptor is None or mode is ContractMode.OFF:
            return ServiceContract(self.service, Status.OFF)
        ours = self.descriptor
        address = self.settings.address
        try:
            served = await self._retrying(
                lambda: served_descriptors(
                    channel,
                    ours.full_name,
                    timeout_s=self.settings.deadline_s,
                    metadata=self._metadata(None),
                )
            )
        except ReflectionUnavailable as exc:
            why = f"reflection unavailable: {exc}"
            if mode is ContractMode.REQUIRE:
                raise ContractUnchecked(
                    f"{ours.full_name} at {address}: GENERIA_CONTRACT_CHECK=require, but the "
                    f"service's contract cannot be read ({why}); serve gRPC reflection on the "
                    "platform, or set GENERIA_CONTRACT_CHECK=warn to run unchecked"
                ) from None
            if (ours.full_name, address) not in _WARNED:
                _WARNED.add((ours.full_name, address))
                log.warning(
                    "%s at %s: contract not checked (%s); calling it as the specification",
                    ours.full_name,
                    address,
                    why,
                )
            return ServiceContract(self.service, Status.UNCHECKED, reason=why)
        contract = compare(
            ours,
            served.service,
            CALLED_METHODS[ours.full_name],
            message_class=served.message_class,
        )
        refuse_if_incompatible(contract, address)
        for method, (request, response) in contract.wire.items():
            response_class = message_factory.GetMessageClass(
                ours.methods_by_name[method].output_type
            )
            setattr(
                self._stub,
                method,
                channel.unary_unary(
                    f"/{ours.full_name}/{method}",
                    request_serializer=encoder(request),
                    response_deserializer=decoder(response, response_class),
                ),
            )
        if contract.differences and (ours.full_name, address) not in _WARNED:
            _WARNED.add((ours.full_name, address))
            log.warning("%s at %s: %s", ours.full_name, address, contract.summary())
        return contract

    def _retry_policy(
        self,
        transient: Callable[[BaseException], bool],
        *,
        before_sleep: Callable[[RetryCallState], None] | None = None,
    ) -> AsyncRetrying:
        """This client's retries: its attempts, exponential backoff with jitter."""
        settings = self.settings
        return AsyncRetrying(
            stop=stop_after_attempt(settings.max_attempts),
            wait=wait_exponential_jitter(
                multiplier=settings.backoff_initial_s,
                jitter=settings.backoff_initial_s,
                max=settings.backoff_max_s,
            ),
            retry=retry_if_exception(transient),
            before_sleep=before_sleep,
            reraise=True,
        )

    async def _retrying(self, action: Callable[[], Awaitable[T]]) -> T:
        """``action`` retried on transient failures, like every call of this client."""

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, ReflectionUnavailable) and exc.code in RETRYABLE_CODES

        async for attempt in self._retry_policy(transient):
            with attempt:
                return await action()
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel = None

    async def aclose(self) -> None:
        await self.close()

    def _metadata(self, idempotency_key: str | None) -> tuple[tuple[str, str], ...]:
        entries: list[tuple[str, str]] = []
        if self.settings.token:
            entries.append(("authorization", f"Bearer {self.settings.token}"))
        if idempotency_key is not None:
            if not idempotency_key:
                raise ValueError("idempotency_key must not be empty")
            entries.append((IDEMPOTENCY_HEADER, idempotency_key))
        return tuple(entries)

    async def _call(
        self,
        method: str,
        rpc: Callable[..., Awaitable[R]],
        request: Message,
        *,
        world_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Invoke one unary RPC with deadline and retries; map failures to typed errors."""
        if self._channel is None:
            raise RuntimeError(f"{self.service} client used before open()")
        metadata = self._metadata(idempotency_key)
        settings = self.settings

        def _log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            code = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else "?"
            log.warning(
                "%s.%s%s: %s, retrying (attempt %d of %d)",
                self.service,
                method,
                f" for world {world_id!r}" if world_id else "",
                code,
                state.attempt_number,
                settings.max_attempts,
            )

        attempts = 0
        try:
            async for attempt in self._retry_policy(_is_transient, before_sleep=_log_retry):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    try:
                        return await rpc(request, timeout=settings.deadline_s, metadata=metadata)
                    except grpc.aio.AioRpcError as exc:
                        if idempotency_key is not None and exc.code() in UNCERTAIN_CODES:
                            self._uncertain.setdefault(idempotency_key, []).append(exc.code().name)
                        raise
        except grpc.aio.AioRpcError as exc:
            cls = rpc_error_class(exc.code())
            raise cls(
                self.service,
                method,
                exc.code(),
                exc.details() or "",
                world_id=world_id,
                attempts=attempts,
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _health(self, rpc: Callable[..., Awaitable[Any]], request: Message) -> str:
        response = await self._call("HealthCheck", rpc, request)
        return str(response.status)
