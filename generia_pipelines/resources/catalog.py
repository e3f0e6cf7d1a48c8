"""Where the worlds come from: the World service when configured, else a YAML file."""

from __future__ import annotations

import asyncio
import os

from dagster import ConfigurableResource
from pydantic import Field

from generia_pipelines.catalog import CatalogListing, FileCatalog, WorldCatalog
from generia_pipelines.catalog_service import ServiceCatalog
from generia_pipelines.clients.grpc_base import ChannelSettings
from generia_pipelines.clients.platform import WorldClient
from generia_pipelines.resources.grpc import WorldResource

WORLDS_FILE_VAR = "GENERIA_WORLDS_FILE"


class CatalogResource(ConfigurableResource):
    """The worlds catalog; the World service wins when ``GENERIA_WORLD_ADDR`` is set."""

    worlds_file: str = Field(
        default="worlds.yaml", description="YAML catalog (GENERIA_WORLDS_FILE)"
    )

    def open(self, world_service: WorldResource | None) -> WorldCatalog:
        """The catalog for a run: the World service's client if it is open, else the file."""
        if world_service is not None and world_service.configured:
            return ServiceCatalog(world_service.client)
        return FileCatalog(self.worlds_file)

    def list_outside_run(self) -> CatalogListing:
        """List the worlds from a sensor (no run loop): opens a short-lived World client."""
        return asyncio.run(_list(self.worlds_file, WorldResource.settings_from_environ()))

    @classmethod
    def from_env(cls) -> CatalogResource:
        return cls(worlds_file=os.environ.get(WORLDS_FILE_VAR) or "worlds.yaml")


async def _list(worlds_file: str, settings: ChannelSettings | None) -> CatalogListing:
    if settings is None:
        return await FileCatalog(worlds_file).list_worlds()
    async with WorldClient(settings) as client:
        return await ServiceCatalog(client).list_worlds()
