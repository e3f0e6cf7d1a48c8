"""Dagster resources for the Generia gRPC services.

Each resource opens one channel on the run's event loop (Dagster runs one loop per run and
enters an async ``yield_for_execution`` on it) and closes it when the run ends. Settings come
from the environment through ``EnvVar`` so the token is never shown in the UI or the logs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Self

import httpx
from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field, PrivateAttr

from generia_pipelines.clients.contract import CONTRACT_VARIABLE, ContractMode, Status
from generia_pipelines.clients.grpc_base import ChannelSettings, GrpcClient
from generia_pipelines.clients.platform import (
    CharacterClient,
    MediaClient,
    PostClient,
    WorldClient,
)
from generia_pipelines.clients.upload import PresignedUploader
from generia_pipelines.settings_env import parse_flag

#: The local Generia stack's fixed ports (``generia-pipelines stack``).
LOCAL_ADDRESSES = {
    "GENERIA_CHARACTER_ADDR": "127.0.0.1:50051",
    "GENERIA_MEDIA_ADDR": "127.0.0.1:50052",
    "GENERIA_POST_ADDR": "127.0.0.1:50053",
    "GENERIA_WORLD_ADDR": "127.0.0.1:50054",
}
IDEMPOTENCY_VARIABLE = "GENERIA_GRPC_IDEMPOTENCY_HONOURED"


def env_flag(name: str, default: bool = False) -> bool:
    """Read a boolean variable strictly, so a typo is an error rather than a silent 'off'."""
    raw = os.environ.get(name)
    return default if raw is None else parse_flag(name, raw)


class GrpcServiceResource(ConfigurableResource):
    """Common settings of a Generia gRPC service; subclasses name the service and variable."""

    address: str = Field(description="gRPC host:port of the service")
    tls: bool = Field(default=False, description="Use TLS (GENERIA_GRPC_TLS)")
    ca_file: str | None = Field(default=None, description="PEM roots (GENERIA_GRPC_CA_FILE)")
    token: str | None = Field(default=None, description="Bearer token (GENERIA_GRPC_TOKEN)")
    deadline_s: float = Field(default=10.0, description="Per-call deadline in seconds")
    max_attempts: int = Field(default=5, description="Attempts for transient statuses")
    honours_idempotency: bool = Field(
        default=True,
        description="The service honours idempotency-key (GENERIA_GRPC_IDEMPOTENCY_HONOURED); "
        "when false, a create retried after a lost answer is logged as a suspected duplicate",
    )
    contract_check: str = Field(
        default=ContractMode.WARN.value,
        description="Compare the service's contract, read through gRPC reflection, with the "
        "pipeline's at setup (GENERIA_CONTRACT_CHECK): off, warn (unchecked where reflection "
        "is not served) or require",
    )

    address_variable: ClassVar[str] = ""
    client_class: ClassVar[type[GrpcClient]] = GrpcClient
    _client: Any = PrivateAttr(default=None)

    def channel_settings(self) -> ChannelSettings:
        return ChannelSettings(
            address=self.address,
            tls=self.tls,
            ca_file=self.ca_file or None,
            token=self.token or None,
            deadline_s=self.deadline_s,
            max_attempts=self.max_attempts,
            address_variable=self.address_variable,
            contract_mode=ContractMode.parse(self.contract_check),
        )

    @asynccontextmanager
    async def yield_for_execution(  # type: ignore[override]
        self, context: InitResourceContext
    ) -> AsyncIterator[Self]:
        """Validate the settings and hold one open channel for the whole run."""
        client = self.client_class(self.channel_settings())
        async with client:
            contract, run_log = client.contract, context.log
            if run_log is not None:  # the run's log in the UI
                drifted = contract.status in (Status.UNCHECKED, Status.BRIDGED)
                (run_log.warning if drifted else run_log.info)(
                    f"platform contract: {contract.summary()}"
                )
            self._client = client
            try:
                yield self
            finally:
                self._client = None

    def _require_client(self) -> Any:
        if self._client is None:
            raise RuntimeError(
                f"{type(self).__name__} is only usable inside a Dagster run (its channel "
                "opens on the run's event loop)"
            )
        return self._client

    @classmethod
    def default_address(cls) -> str:
        """Where the service is when its variable is unset: the local stack."""
        return LOCAL_ADDRESSES[cls.address_variable]

    @classmethod
    def _from_environ(cls, *, resolved: bool) -> Self:
        """The one mapping from GENERIA_* variables to fields. ``resolved=False`` keeps
        strings as ``EnvVar`` (Dagster resolves them at run time, the token stays hidden);
        ``resolved=True`` reads their values, for code outside a run (a sensor)."""

        def text(variable: str, default: str | None) -> Any:
            if not os.environ.get(variable):
                return default
            return os.environ[variable] if resolved else EnvVar(variable)

        return cls(
            address=text(cls.address_variable, cls.default_address()),
            tls=env_flag("GENERIA_GRPC_TLS"),
            ca_file=text("GENERIA_GRPC_CA_FILE", None),
            token=text("GENERIA_GRPC_TOKEN", None),
            honours_idempotency=env_flag(IDEMPOTENCY_VARIABLE, default=True),
            contract_check=text(CONTRACT_VARIABLE, ContractMode.WARN.value),
        )

    @classmethod
    def from_env(cls) -> Self:
        """The resource configured from the GENERIA_* variables (for Definitions)."""
        return cls._from_environ(resolved=False)

    @classmethod
    def settings_from_environ(cls) -> ChannelSettings | None:
        """The service's channel settings read from the environment now, outside a run;
        None when no address is configured."""
        resource = cls._from_environ(resolved=True)
        return resource.channel_settings() if resource.address else None


class CharacterResource(GrpcServiceResource):
    """CharacterService: create AI characters and attach their avatars."""

    address_variable: ClassVar[str] = "GENERIA_CHARACTER_ADDR"
    client_class: ClassVar[type[GrpcClient]] = CharacterClient

    @property
    def client(self) -> CharacterClient:
        """The run's client (its channel lives as long as the run)."""
        client: CharacterClient = self._require_client()
        return client


class MediaResource(GrpcServiceResource):
    """MediaService: presigned uploads and their confirmation, plus the HTTP PUT itself."""

    address_variable: ClassVar[str] = "GENERIA_MEDIA_ADDR"
    client_class: ClassVar[type[GrpcClient]] = MediaClient

    @property
    def client(self) -> MediaClient:
        """The run's client (its channel lives as long as the run)."""
        client: MediaClient = self._require_client()
        return client

    upload_timeout_s: float = Field(default=60.0, description="Timeout of one presigned PUT")
    upload_attempts: int = Field(default=4, description="PUT attempts on 5xx/connection errors")
    max_presigns: int = Field(default=3, description="Presigned URLs tried when one expires")
    max_connections: int = Field(
        default=32, description="Concurrent upload connections (a run's uploads in flight)"
    )
    _uploader: Any = PrivateAttr(default=None)

    @asynccontextmanager
    async def yield_for_execution(  # type: ignore[override]
        self, context: InitResourceContext
    ) -> AsyncIterator[Self]:
        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        async with (
            super().yield_for_execution(context) as resource,
            httpx.AsyncClient(timeout=self.upload_timeout_s, limits=limits) as http,
        ):
            self._uploader = PresignedUploader(
                resource.client,
                http,
                put_attempts=self.upload_attempts,
                max_presigns=self.max_presigns,
            )
            try:
                yield resource
            finally:
                self._uploader = None

    @property
    def uploader(self) -> PresignedUploader:
        if self._uploader is None:
            raise RuntimeError("MediaResource.uploader is only usable inside a Dagster run")
        return self._uploader  # type: ignore[no-any-return]


class PostResource(GrpcServiceResource):
    """PostService: publish posts on behalf of AI characters."""

    address_variable: ClassVar[str] = "GENERIA_POST_ADDR"
    client_class: ClassVar[type[GrpcClient]] = PostClient

    @property
    def client(self) -> PostClient:
        """The run's client (its channel lives as long as the run)."""
        client: PostClient = self._require_client()
        return client


class WorldResource(GrpcServiceResource):
    """WorldService: the worlds catalog; optional, as the catalog may be a YAML file."""

    address_variable: ClassVar[str] = "GENERIA_WORLD_ADDR"
    client_class: ClassVar[type[GrpcClient]] = WorldClient

    @property
    def client(self) -> WorldClient:
        """The run's client (its channel lives as long as the run)."""
        client: WorldClient = self._require_client()
        return client

    address: str = Field(default="", description="gRPC host:port; empty = no World service")

    @property
    def configured(self) -> bool:
        return bool(self.address)

    @asynccontextmanager
    async def yield_for_execution(  # type: ignore[override]
        self, context: InitResourceContext
    ) -> AsyncIterator[Self]:
        if not self.address:
            yield self  # no World service: callers check ``configured``
            return
        async with super().yield_for_execution(context) as resource:
            yield resource

    @classmethod
    def default_address(cls) -> str:
        """Unset GENERIA_WORLD_ADDR means the catalog is the worlds file, not the service."""
        return ""
