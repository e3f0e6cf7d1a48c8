"""A local stack with the Runware stand-in, a worlds file, and resources pointed at them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from dagster import (
    DagsterInstance,
    MultiPartitionKey,
    PartitionKeyRange,
    RunRequest,
    materialize,
    partition_loading_context,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from generia_pipelines.assets.posts import day_posts, world_days
from generia_pipelines.assets.world import world_setup
from generia_pipelines.ledger import Ledger
from generia_pipelines.local.runware_standin import RunwareComponent
from generia_pipelines.local.stack import StackConfig, ThreadedStack
from generia_pipelines.partitions import world_day_key, worlds_partitions
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

SETUP = [world_setup]
DAILY = [day_posts]


@dataclass
class Bed:
    """Everything a pipeline test needs, with the knobs tests turn."""

    stack: ThreadedStack
    runware: RunwareComponent
    worlds_file: Path
    ledger_url: str
    instance: DagsterInstance

    def write_worlds(self, worlds: list[dict[str, Any]]) -> None:
        self.worlds_file.write_text(yaml.safe_dump({"worlds": worlds}))

    def resources(self, **overrides: Any) -> dict[str, Any]:
        env = self.stack.env
        resources: dict[str, Any] = {
            "catalog": CatalogResource(worlds_file=str(self.worlds_file)),
            "world": WorldResource(),
            "character": CharacterResource(address=env["GENERIA_CHARACTER_ADDR"]),
            "media": MediaResource(address=env["GENERIA_MEDIA_ADDR"]),
            "post": PostResource(address=env["GENERIA_POST_ADDR"]),
            "runware": RunwareResource(
                api_key=env["RUNWARE_API_KEY"], url=env["RUNWARE_URL"], backoff_initial_s=0.05
            ),
            "text": TextGenerationResource(backend="local"),
            "ledger": LedgerResource(url=self.ledger_url),
        }
        resources.update(overrides)
        return resources

    def setup(self, world_id: str, **kwargs: Any) -> Any:
        self.instance.add_dynamic_partitions("worlds", [world_id])
        return materialize(
            SETUP,
            partition_key=world_id,
            resources=self.resources(),
            instance=self.instance,
            **kwargs,
        )

    def day(self, world_id: str, day: str, assets: list[Any] | None = None, **kwargs: Any) -> Any:
        key: MultiPartitionKey = world_day_key(world_id, day)
        resources = kwargs.pop("resources", None) or self.resources()
        return materialize(
            assets or DAILY,
            partition_key=key,
            resources=resources,
            instance=self.instance,
            **kwargs,
        )

    def platform(self, world_id: str, what: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.stack.http_url}/_admin/worlds/{world_id}/{what}", timeout=10)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()
        return items

    def ledger(self) -> Ledger:
        return Ledger(self.ledger_url)


@contextmanager
def test_bed(tmp_path: Path, **stack_options: Any) -> Iterator[Bed]:
    """``stack_options``: more StackConfig fields (the revision served, reflection...)."""
    runware = RunwareComponent()
    config = StackConfig(data_dir=tmp_path / "stack", **stack_options)
    stack = ThreadedStack(config, [runware]).start()
    try:
        with DagsterInstance.ephemeral() as instance:
            yield Bed(
                stack=stack,
                runware=runware,
                worlds_file=tmp_path / "worlds.yaml",
                ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
                instance=instance,
            )
    finally:
        stack.stop()


test_bed.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def covered(request: RunRequest, instance: DagsterInstance) -> list[str]:
    """The partition keys a run request covers: its one key, or every key of its range."""
    if request.partition_key is not None:
        return [str(request.partition_key)]
    start = request.tags[ASSET_PARTITION_RANGE_START_TAG]
    end = request.tags[ASSET_PARTITION_RANGE_END_TAG]
    partitions = worlds_partitions if "|" not in start else world_days
    with partition_loading_context(dynamic_partitions_store=instance):
        return [
            str(key)
            for key in partitions.get_partition_keys_in_range(PartitionKeyRange(start, end))
        ]
