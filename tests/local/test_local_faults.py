"""Fault injection: each kind on real calls, run-time control over HTTP, determinism."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from typing import Any

import grpc
import pytest
from stack_helpers import WORLD, StackApi, expect_status, image_bytes, key_md, open_api

from generia_pipelines.local.faults import FaultInjector, normalize_method, qualified_name
from generia_pipelines.local.stack import ThreadedStack
from generia_pipelines.proto import character_pb2, media_pb2, post_pb2, world_pb2

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


# --- the injector itself -------------------------------------------------------------------


def test_method_names_are_normalized_and_checked() -> None:
    assert normalize_method("CreateCharacter") == "CreateCharacter"
    assert normalize_method("character.CreateCharacter") == "character.CreateCharacter"
    assert (
        normalize_method("/generia.character.CharacterService/CreateCharacter")
        == "character.CreateCharacter"
    )
    assert normalize_method("object_store.PUT") == "object_store.PUT"
    assert qualified_name("/media.MediaService/ConfirmUpload") == "media.ConfirmUpload"
    for bad in ("CreateCharactr", "media.CreateCharacter", "object_store.DELETE", ""):
        with pytest.raises(ValueError, match="unknown method"):
            normalize_method(bad)


def test_invalid_settings_are_refused() -> None:
    faults = FaultInjector()
    with pytest.raises(ValueError):
        faults.set("GetWorld", error_rate=1.5)
    with pytest.raises(ValueError):
        faults.set("GetWorld", error_code="NOPE")
    with pytest.raises(ValueError):
        faults.set("GetWorld", error_code="OK")
    with pytest.raises(ValueError):
        faults.set("GetWorld", times=0)
    with pytest.raises(ValueError):
        faults.set("GetWorld", latency_s=-1)


def test_rates_are_deterministic_for_a_seed() -> None:
    def outcomes(seed: int) -> list[bool]:
        faults = FaultInjector(seed)
        faults.set("GetWorld", error_rate=0.5)
        return [faults.decide("world.GetWorld").error_code is not None for _ in range(200)]

    first = outcomes(7)
    assert first == outcomes(7)
    assert first != outcomes(8)
    assert 60 < sum(first) < 140


def test_times_hits_exactly_the_next_calls_then_expires() -> None:
    faults = FaultInjector()
    faults.set("character.CreateCharacter", times=2)
    decisions = [faults.decide("character.CreateCharacter") for _ in range(3)]
    assert [d.error_code for d in decisions] == [UNAVAILABLE, UNAVAILABLE, None]
    assert faults.snapshot()["rules"] == {}


def test_most_specific_rule_wins_and_wildcard_applies_last() -> None:
    faults = FaultInjector()
    faults.set("*", latency_s=0.5)
    faults.set("HealthCheck", error_code="INTERNAL", error_rate=1.0)
    faults.set("media.HealthCheck", error_code="DATA_LOSS", error_rate=1.0)
    assert faults.decide("media.HealthCheck").error_code == grpc.StatusCode.DATA_LOSS
    assert faults.decide("post.HealthCheck").error_code == grpc.StatusCode.INTERNAL
    assert faults.decide("world.GetWorld").latency_s == 0.5
    faults.clear("HealthCheck")
    assert faults.decide("post.HealthCheck").latency_s == 0.5
    faults.clear()
    assert faults.snapshot() == {"rules": {}, "expire_urls_early": False, "url_ttl_s": None}


def test_url_ttl_overrides() -> None:
    faults = FaultInjector()
    assert faults.effective_url_ttl(600) == 600
    faults.set_url_ttl(5)
    assert faults.effective_url_ttl(600) == 5
    faults.expire_urls_early()
    assert faults.effective_url_ttl(600) < 0
    faults.clear()
    assert faults.effective_url_ttl(600) == 600


# --- on the running stack ------------------------------------------------------------------


async def test_latency_delays_the_call_and_can_hit_the_deadline(
    stack: ThreadedStack, api: StackApi
) -> None:
    stack.faults.set("GetWorlds", latency_s=0.3)
    started = time.monotonic()
    await api.world.GetWorlds(world_pb2.GetWorldsRequest())
    assert time.monotonic() - started >= 0.3
    await expect_status(
        api.world.GetWorlds(world_pb2.GetWorldsRequest(), timeout=0.1),
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )


async def test_error_for_the_next_n_calls_has_no_effect(
    stack: ThreadedStack, api: StackApi
) -> None:
    stack.faults.set("character.CreateCharacter", times=2, error_code="RESOURCE_EXHAUSTED")
    for _ in range(2):
        error = await expect_status(api.create_character(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert "injected" in (error.details() or "")
    created = await api.create_character()
    assert [c["id"] for c in await api.admin(WORLD, "characters")] == [created.id]
    stats = await api.stats("character.CreateCharacter")
    assert (stats["calls"], stats["injected_errors"]) == (3, 2)


async def test_error_rate_draws_from_the_seeded_rng(stack_factory: Any) -> None:
    async def pattern() -> list[bool]:
        stack = stack_factory(seed=3)
        stack.faults.set("HealthCheck", error_rate=0.5)
        outcomes = []
        async with AsyncExitStack() as exits:
            api = await open_api(stack, exits)
            for _ in range(16):
                try:
                    await api.post.HealthCheck(post_pb2.HealthCheckRequest())
                    outcomes.append(True)
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == UNAVAILABLE
                    outcomes.append(False)
        return outcomes

    first = await pattern()
    assert first == await pattern()
    assert any(first) and not all(first)


async def test_drop_after_commit_commits_and_the_key_recovers_the_result(
    stack: ThreadedStack, api: StackApi
) -> None:
    stack.faults.set("CreateCharacter", drop_after_commit_rate=1.0, times=1)
    request = character_pb2.CreateCharacterRequest(world_id=WORLD, display_name="Lost")
    await expect_status(api.character.CreateCharacter(request, metadata=key_md("k")), UNAVAILABLE)
    [stored] = await api.admin(WORLD, "characters")  # the effect happened
    retried = await api.character.CreateCharacter(request, metadata=key_md("k"))
    assert retried.id == stored["id"]
    assert len(await api.admin(WORLD, "characters")) == 1
    stats = await api.stats("character.CreateCharacter")
    assert (stats["dropped_responses"], stats["replays"]) == (1, 1)


async def test_drop_after_commit_without_a_key_duplicates_on_retry(
    stack: ThreadedStack, api: StackApi
) -> None:
    stack.faults.set("CreateCharacter", drop_after_commit_rate=1.0, times=1)
    await expect_status(api.create_character(name="Dup"), UNAVAILABLE)
    await api.create_character(name="Dup")
    assert [c["display_name"] for c in await api.admin(WORLD, "characters")] == ["Dup", "Dup"]


async def test_drop_after_commit_on_a_post(stack: ThreadedStack, api: StackApi) -> None:
    ada = await api.create_character()
    media_id = await api.upload(ada.id)
    stack.faults.set("post.CreateAIPost", drop_after_commit_rate=1.0, times=1)
    await expect_status(api.create_post(ada.id, media_id), UNAVAILABLE)
    assert len(await api.admin(WORLD, "posts")) == 1


async def test_early_expiry_then_clear(stack: ThreadedStack, api: StackApi) -> None:
    ada = await api.create_character()
    data = image_bytes()
    stack.faults.expire_urls_early()
    expired = await api.presign(ada.id, data)
    assert expired.expires_at < time.time()
    assert (await api.put(expired.upload_url, data)).status_code == 403
    stack.faults.clear()
    fresh = await api.presign(ada.id, data)
    assert (await api.put(fresh.upload_url, data)).status_code == 200


async def test_object_store_put_503_then_success(stack: ThreadedStack, api: StackApi) -> None:
    ada = await api.create_character()
    data = image_bytes()
    presigned = await api.presign(ada.id, data)
    stack.faults.set("object_store.PUT", times=1)
    failed = await api.put(presigned.upload_url, data)
    assert failed.status_code == 503 and "ServiceUnavailable" in failed.text
    [media] = await api.admin(WORLD, "media")
    assert not media["uploaded"]
    assert (await api.put(presigned.upload_url, data)).status_code == 200


async def test_object_store_put_dropped_after_commit_is_stored(
    stack: ThreadedStack, api: StackApi
) -> None:
    ada = await api.create_character()
    data = image_bytes()
    presigned = await api.presign(ada.id, data)
    stack.faults.set("object_store.PUT", drop_after_commit_rate=1.0, times=1)
    assert (await api.put(presigned.upload_url, data)).status_code == 503
    confirmed = await api.media.ConfirmUpload(
        media_pb2.ConfirmUploadRequest(media_id=presigned.media_id, character_id=ada.id)
    )
    assert confirmed.success
    assert (await api.stats("object_store.PUT"))["dropped_responses"] == 1


async def test_http_control_endpoint(stack: ThreadedStack, api: StackApi) -> None:
    url = f"{api.base}/_control/faults"
    response = await api.http.post(
        url,
        json=[
            {"method": "character.CreateCharacter", "times": 1, "error_code": "INTERNAL"},
            {"method": "object_store.PUT", "latency_s": 0.01},
            {"url_ttl_s": 30},
        ],
    )
    assert response.status_code == 200, response.text
    state = response.json()
    assert state["rules"]["character.CreateCharacter"]["remaining"] == 1
    assert state["url_ttl_s"] == 30
    await expect_status(api.create_character(), grpc.StatusCode.INTERNAL)
    await api.create_character()
    assert (await api.http.get(url)).json()["rules"].keys() == {"object_store.PUT"}
    bad = await api.http.post(url, json={"method": "Nope", "times": 1})
    assert bad.status_code == 400 and "unknown method" in bad.json()["error"]
    assert (await api.http.post(url, json={"method": "GetWorld", "sped": 1})).status_code == 400
    cleared = await api.http.delete(url)
    assert cleared.json() == {"rules": {}, "expire_urls_early": False, "url_ttl_s": None}


async def test_stats_endpoint_counts_calls_errors_and_drops(
    stack: ThreadedStack, api: StackApi
) -> None:
    stack.faults.set("GetWorld", times=1)
    await expect_status(api.world.GetWorld(world_pb2.GetWorldRequest(world_id="x")), UNAVAILABLE)
    await expect_status(
        api.world.GetWorld(world_pb2.GetWorldRequest(world_id="x")), grpc.StatusCode.NOT_FOUND
    )
    stats = await api.stats("world.GetWorld")
    assert stats == {
        "calls": 2,
        "injected_errors": 1,
        "dropped_responses": 0,
        "failures": 1,
        "replays": 0,
    }
    assert (await api.http.delete(f"{api.base}/_admin/stats")).status_code == 200
    assert await api.stats("world.GetWorld") == {}
