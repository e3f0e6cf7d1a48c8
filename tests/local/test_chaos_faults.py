"""The faults chaos runs draw by rate: late answers after the commit, truncated uploads,
URLs that expire before their PUT, latency on a share of calls."""

from __future__ import annotations

import time

import grpc
from stack_helpers import StackApi, expect_status, image_bytes, key_md

from generia_pipelines.local.faults import FaultInjector
from generia_pipelines.local.stack import ThreadedStack
from generia_pipelines.proto import character_pb2


async def test_late_answer_after_commit_is_a_lost_response(
    stack: ThreadedStack, api: StackApi
) -> None:
    stack.faults.set("CreateCharacter", latency_s=0.5, latency_after_commit=True, times=1)
    request = character_pb2.CreateCharacterRequest(world_id="w-late", display_name="Ada")
    await expect_status(
        api.character.CreateCharacter(request, timeout=0.2, metadata=key_md("k-late")),
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    # The commit happened before the delay; the retry with the same key replays it.
    replayed = await api.character.CreateCharacter(request, metadata=key_md("k-late"))
    assert [c["id"] for c in await api.admin("w-late", "characters")] == [replayed.id]
    assert stack.stats.get("character.CreateCharacter").replays == 1
    assert stack.faults.snapshot()["fired"] == {"delayed_calls": 1}


async def test_truncated_upload_stores_nothing_and_says_incomplete_body(
    stack: ThreadedStack, api: StackApi
) -> None:
    character = await api.create_character()
    data = image_bytes()
    presigned = await api.presign(character.id, data)
    stack.faults.set("object_store.PUT", truncate_rate=1.0, times=1)
    refused = await api.put(presigned.upload_url, data)
    assert refused.status_code == 400 and "IncompleteBody" in refused.text
    media = {m["media_id"]: m for m in await api.admin(character.world_id, "media")}
    assert media[presigned.media_id]["uploaded"] is False
    assert (await api.put(presigned.upload_url, data)).status_code == 200  # the URL still works
    assert stack.faults.snapshot()["fired"] == {"truncated_uploads": 1}


async def test_url_can_expire_before_its_put_while_expires_at_looks_fine(
    stack: ThreadedStack, api: StackApi
) -> None:
    character = await api.create_character()
    data = image_bytes()
    stack.faults.set_early_expiry_rate(1.0)
    presigned = await api.presign(character.id, data)
    assert presigned.expires_at > time.time() + 60
    refused = await api.put(presigned.upload_url, data)
    assert refused.status_code == 403 and "Request has expired" in refused.text
    stack.faults.set_early_expiry_rate(0.0)
    fresh = await api.presign(character.id, data)
    assert (await api.put(fresh.upload_url, data)).status_code == 200
    snapshot = stack.faults.snapshot()
    assert snapshot["fired"] == {"early_expired_urls": 1}


def test_latency_rate_delays_only_a_share_of_calls() -> None:
    faults = FaultInjector(seed=3)
    faults.set("GetWorld", latency_s=1.0, latency_rate=0.25)
    delayed = sum(faults.decide("world.GetWorld").latency_s > 0 for _ in range(400))
    assert 60 < delayed < 140
    assert faults.snapshot()["fired"]["delayed_calls"] == delayed


def test_new_fields_travel_through_json_commands() -> None:
    faults = FaultInjector()
    faults.apply(
        {
            "method": "object_store.PUT",
            "truncate_rate": 0.5,
            "latency_s": 0.1,
            "latency_rate": 0.5,
            "latency_after_commit": True,
        }
    )
    faults.apply({"early_expiry_rate": 0.2})
    snapshot = faults.snapshot()
    rule = snapshot["rules"]["object_store.PUT"]
    assert (rule["truncate_rate"], rule["latency_rate"], rule["latency_after_commit"]) == (
        0.5,
        0.5,
        True,
    )
    assert snapshot["early_expiry_rate"] == 0.2
    faults.clear()
    assert "early_expiry_rate" not in faults.snapshot()
