"""Worlds from the World service instead of a file, and keys Dagster would accept but we don't."""

from __future__ import annotations

import asyncio
import json

from pipeline_helpers import Bed

from generia_pipelines.clients.grpc_base import ChannelSettings
from generia_pipelines.clients.platform import WorldClient
from generia_pipelines.clients.records import World
from generia_pipelines.resources.grpc import WorldResource


async def _create_world(address: str) -> World:
    async with WorldClient(ChannelSettings(address)) as client:
        made = await client.create_world(
            name="Salt Flats",
            prompt="A white desert of mirror-makers and wind racers",
            characters_count=3,
            posts_count=2,
            idempotency_key="worlds/salt-flats",
        )
        # The platform records its planned population in users_count/posts_count.
        await client.update_world_params(made.id, {}, users_count=3, posts_count=2)
        return made


async def _get_world(address: str, world_id: str) -> World:
    async with WorldClient(ChannelSettings(address)) as client:
        return await client.get_world(world_id)


def test_world_service_catalog_and_brief_pushed_back(bed: Bed) -> None:
    address = bed.stack.env["GENERIA_WORLD_ADDR"]
    made = asyncio.run(_create_world(address))
    resources = bed.resources(world=WorldResource(address=address))
    bed.instance.add_dynamic_partitions("worlds", [made.id])
    from dagster import materialize
    from pipeline_helpers import SETUP

    result = materialize(SETUP, partition_key=made.id, resources=resources, instance=bed.instance)
    assert result.success
    assert len(bed.platform(made.id, "characters")) == 3
    params = json.loads(asyncio.run(_get_world(address, made.id)).params or "{}")
    assert params["brief"]["summary"]
    assert bed.stack.stats.get("world.UpdateWorldParams").calls == 1 + 1  # ours + the push

    again = materialize(SETUP, partition_key=made.id, resources=resources, instance=bed.instance)
    assert again.success
    assert bed.stack.stats.get("world.UpdateWorldParams").calls == 2  # pushed once


def test_a_partition_key_that_breaks_multi_keys_is_refused(bed: Bed) -> None:
    result = bed.setup("harbor|two", raise_on_error=False)
    assert not result.success
    text = " ".join(
        str(e.event_specific_data)
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    )
    assert "harbor|two" in text and "|" in text
    assert bed.stack.stats.get("character.CreateCharacter").calls == 0
