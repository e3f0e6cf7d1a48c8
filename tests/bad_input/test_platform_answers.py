"""Platform refusals: NOT_FOUND and PERMISSION_DENIED fail at once, naming what was refused.

Neither is retried, by the client or by Dagster's step retry policy: the answer would be the
same. What was done before the refusal (a paid image, an upload) stays in the ledger, and a
run after the problem is fixed picks it up without paying again.
"""

from __future__ import annotations

import asyncio

from bad_input_helpers import DAY, GOOD_ID, GOOD_WORLD, NOT_RETRIED, failure_text, step_retries
from dagster import materialize
from pipeline_helpers import SETUP, Bed

from generia_pipelines.clients.grpc_base import ChannelSettings
from generia_pipelines.clients.platform import WorldClient
from generia_pipelines.ledger import Stage
from generia_pipelines.resources.grpc import WorldResource

POSTS = GOOD_WORLD["posts_per_day"]
CHARACTERS = GOOD_WORLD["characters"]


async def _create_world(address: str) -> str:
    async with WorldClient(ChannelSettings(address)) as client:
        made = await client.create_world(
            name="Salt Flats",
            prompt="A white desert of mirror-makers and wind racers",
            characters_count=CHARACTERS,
            posts_count=POSTS,
            idempotency_key="worlds/salt-flats",
        )
        await client.update_world_params(made.id, {}, users_count=CHARACTERS, posts_count=POSTS)
        return made.id


def test_a_world_the_world_service_does_not_know_fails_at_once(bed: Bed) -> None:
    address = bed.stack.env["GENERIA_WORLD_ADDR"]
    known = asyncio.run(_create_world(address))
    resources = bed.resources(world=WorldResource(address=address))
    bed.instance.add_dynamic_partitions("worlds", ["ghost-town", known])

    result = materialize(
        SETUP,
        partition_key="ghost-town",
        resources=resources,
        instance=bed.instance,
        raise_on_error=False,
    )
    assert not result.success
    text = failure_text(result)
    assert (
        "NotFound: WorldService.GetWorld for world 'ghost-town' failed with NOT_FOUND: "
        "world ghost-town not found"
    ) in text
    assert NOT_RETRIED in text
    assert step_retries(result) == 0
    assert bed.stack.stats.get("world.GetWorld").calls == 1  # no client retry either
    with bed.ledger() as ledger:
        assert ledger.get("briefs/ghost-town") is None

    # The service's other world is unaffected.
    ok = materialize(SETUP, partition_key=known, resources=resources, instance=bed.instance)
    assert ok.success
    assert len(bed.platform(known, "characters")) == CHARACTERS


def test_media_permission_denied_fails_at_once_and_keeps_the_paid_images(bed: Bed) -> None:
    assert bed.setup(GOOD_ID).success
    standin = bed.runware.standin
    assert standin is not None
    bed.stack.faults.set("ConfirmUpload", error_code="PERMISSION_DENIED", error_rate=1.0)

    result = bed.day(GOOD_ID, DAY, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    # The dominant cause first, with its count, then the first units it hit.
    assert (
        f"MediaService.ConfirmUpload failed with PERMISSION_DENIED: {POSTS} of {POSTS} post "
        f"images (done ones are kept)"
    ) in text
    assert f"First: posts/{GOOD_ID}/{DAY}/0: " in text
    assert (
        f"PermissionDenied: MediaService.ConfirmUpload for world '{GOOD_ID}' failed with "
        "PERMISSION_DENIED: injected fault on media.ConfirmUpload"
    ) in text
    assert NOT_RETRIED in text and step_retries(result) == 0
    assert bed.stack.stats.get("media.ConfirmUpload").calls == CHARACTERS + POSTS  # once each
    assert standin.stats.images_generated == CHARACTERS + POSTS
    with bed.ledger() as ledger:
        units = ledger.units(GOOD_ID, "posts", DAY)
    assert len(units) == POSTS
    assert all(u.reached(Stage.UPLOADED) and not u.reached(Stage.CONFIRMED) for u in units)
    assert bed.platform(GOOD_ID, "posts") == []

    bed.stack.faults.clear()
    assert bed.day(GOOD_ID, DAY).success
    assert len(bed.platform(GOOD_ID, "posts")) == POSTS
    assert standin.stats.images_generated == CHARACTERS + POSTS  # nothing paid twice
