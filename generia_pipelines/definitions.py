"""The code location: assets, checks, jobs, schedule, sensor and resources from the environment."""

from __future__ import annotations

from typing import Any

from dagster import Definitions

from generia_pipelines.assets.posts import day_posts
from generia_pipelines.assets.report import world_report_asset
from generia_pipelines.assets.world import world_setup
from generia_pipelines.automation import (
    daily_posts,
    daily_posts_schedule,
    new_worlds_sensor,
    populate_world,
    world_reports,
    world_reports_schedule,
)
from generia_pipelines.executor import generia_executor
from generia_pipelines.resources.catalog import CatalogResource
from generia_pipelines.resources.grpc import (
    CharacterResource,
    MediaResource,
    PostResource,
    WorldResource,
)
from generia_pipelines.resources.ledger import LedgerResource
from generia_pipelines.resources.runware import RunwareResource
from generia_pipelines.resources.text import TextGenerationResource

ASSETS = [world_setup, day_posts, world_report_asset]


def resources_from_env() -> dict[str, Any]:
    """Every resource configured from the environment (local stack defaults for gRPC)."""
    return {
        "catalog": CatalogResource.from_env(),
        "world": WorldResource.from_env(),
        "character": CharacterResource.from_env(),
        "media": MediaResource.from_env(),
        "post": PostResource.from_env(),
        "runware": RunwareResource.from_env(),
        "text": TextGenerationResource.from_env(),
        "ledger": LedgerResource.from_env(),
    }


defs = Definitions(
    assets=ASSETS,
    jobs=[populate_world, daily_posts, world_reports],
    schedules=[daily_posts_schedule, world_reports_schedule],
    sensors=[new_worlds_sensor],
    resources=resources_from_env(),
    executor=generia_executor,
)
