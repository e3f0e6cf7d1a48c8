"""``RunwareImages.run_task``: one Runware task per taskUUID, never paid twice.

The real SDK against the stand-in: a taskUUID submitted again is answered
``conflictTaskUUID`` and its result fetched with ``getResponse``; errors say whether
Runware billed them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from generia_pipelines.clients.errors import ConfigError
from generia_pipelines.clients.runware import (
    RunwareAuthError,
    RunwareImages,
    RunwareInvalidImage,
    RunwareNSFWError,
    RunwareRequestError,
    RunwareSettings,
    RunwareUnavailable,
    RunwareUnreachable,
)
from generia_pipelines.local.runware_standin import DEFAULT_API_KEY, RunwareStandin, render_image
from generia_pipelines.resources.runware import RunwareResource

pytestmark = pytest.mark.timeout(30)

PROMPT = "a lighthouse on a cliff at dusk"
COST = 0.0006


def fast_settings(url: str, **overrides: Any) -> RunwareSettings:
    """Short timeouts and backoff (as the conftest's), for tests without a stand-in."""
    values: dict[str, Any] = {
        "api_key": DEFAULT_API_KEY,
        "url": url,
        "connect_timeout_s": 5.0,
        "request_timeout_s": 10.0,
        "max_attempts": 3,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
    }
    values.update(overrides)
    return RunwareSettings(**values)


def _new_uuid() -> str:
    return str(uuid.uuid4())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _authed(standin: RunwareStandin) -> ClientConnection:
    ws = await connect(standin.url)
    await ws.send(json.dumps([{"taskType": "authentication", "apiKey": standin.api_key}]))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert reply["data"][0]["connectionSessionUUID"]
    return ws


async def _ask(ws: ClientConnection, task: dict[str, Any]) -> Any:
    await ws.send(json.dumps([task]))
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


def _image_task(task_uuid: str, **fields: Any) -> dict[str, Any]:
    task = {
        "taskType": "imageInference",
        "taskUUID": task_uuid,
        "model": "runware:100@1",
        "positivePrompt": PROMPT,
        "width": 256,
        "height": 256,
        "seed": 5,
        "numberResults": 1,
        "outputType": "base64Data",
        "outputFormat": "PNG",
        "includeCost": True,
    }
    task.update(fields)
    return task


# --------------------------------------------------------------------------- resuming


async def test_a_used_task_uuid_returns_the_same_image_without_billing_again(
    standin: RunwareStandin, make_settings: Any
) -> None:
    task_uuid = _new_uuid()
    async with RunwareImages(make_settings()) as images:
        first = await images.run_task(task_uuid, PROMPT, seed=7)
        again = await images.run_task(task_uuid, PROMPT, seed=7)
        assert images.images_generated == 1
        assert images.cost_usd == pytest.approx(COST)  # the resumed image is not counted twice
    # A re-run after a crash: a new client, the taskUUID from the ledger.
    async with RunwareImages(make_settings()) as images:
        rerun = await images.run_task(task_uuid, PROMPT, seed=7)

    assert first.resumed is False and again.resumed is True and rerun.resumed is True
    assert first.data == again.data == rerun.data == render_image(PROMPT, 7, 512, 512, "PNG")
    assert first.image_uuid == again.image_uuid == rerun.image_uuid
    assert first.task_uuid == again.task_uuid == rerun.task_uuid == task_uuid
    assert first.cost_usd == again.cost_usd == rerun.cost_usd == pytest.approx(COST)
    stats = standin.stats.snapshot()
    assert stats.images_generated == 1
    assert stats.billed_usd == pytest.approx(COST)
    assert stats.conflicts == 2
    assert stats.get_responses == 2
    assert stats.calls["imageInference"] == 3


async def test_a_lost_answer_is_fetched_by_resubmitting_the_task_uuid(
    standin: RunwareStandin, make_settings: Any
) -> None:
    """Billed, then the connection died before the answer: the same taskUUID fetches it."""
    task_uuid = _new_uuid()
    standin.faults.set(lose_answer_next=1)
    ws = await _authed(standin)
    await ws.send(json.dumps([_image_task(task_uuid, width=512, height=512, seed=3)]))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    lost = standin.stats.snapshot()
    assert (lost.images_generated, lost.answers_lost, lost.images_undelivered) == (1, 1, 1)
    assert lost.cost_reported_usd == 0.0 and lost.billed_usd == pytest.approx(COST)

    async with RunwareImages(make_settings()) as images:
        image = await images.run_task(task_uuid, PROMPT, seed=3)
    assert image.resumed is True
    assert image.data == render_image(PROMPT, 3, 512, 512, "PNG")
    assert image.cost_usd == pytest.approx(COST)
    stats = standin.stats.snapshot()
    assert stats.images_generated == 1  # billed once
    assert (stats.conflicts, stats.get_responses) == (1, 1)
    assert stats.images_undelivered == 0  # delivered after all, by getResponse
    assert stats.cost_reported_usd == pytest.approx(COST)


async def test_a_lost_answer_during_run_task_is_recovered_and_billed_once(
    standin: RunwareStandin, make_settings: Any
) -> None:
    """The answer is lost under a running ``run_task``: its retry resubmits the same
    taskUUID (the SDK's own resend or ours) and gets the billed image, not a new one."""
    standin.faults.set(lose_answer_next=1)
    task_uuid = _new_uuid()
    async with RunwareImages(make_settings()) as images:
        image = await images.run_task(task_uuid, PROMPT, seed=4)
    assert image.resumed is True and image.task_uuid == task_uuid
    assert image.data == render_image(PROMPT, 4, 512, 512, "PNG")
    stats = standin.stats.snapshot()
    assert stats.images_generated == 1 and stats.answers_lost == 1
    assert stats.conflicts == 1 and stats.get_responses >= 1


async def test_get_response_while_processing_then_success(
    standin: RunwareStandin, make_settings: Any
) -> None:
    task_uuid = _new_uuid()
    standin.faults.set(latency_s=1.5)
    async with (
        RunwareImages(make_settings()) as original,
        RunwareImages(make_settings()) as other,
    ):
        running = asyncio.create_task(original.run_task(task_uuid, PROMPT, seed=9))
        await asyncio.sleep(0.3)
        resumed = await other.run_task(task_uuid, PROMPT, seed=9)
        first = await running
    assert first.resumed is False and resumed.resumed is True
    assert first.data == resumed.data == render_image(PROMPT, 9, 512, 512, "PNG")
    stats = standin.stats.snapshot()
    assert stats.images_generated == 1
    assert stats.conflicts == 1
    assert stats.get_responses >= 2  # processing first, then success


async def test_get_response_shapes_at_the_protocol_level(standin: RunwareStandin) -> None:
    task_uuid = _new_uuid()
    standin.faults.set(latency_s=0.6)
    producer = await _authed(standin)
    await producer.send(json.dumps([_image_task(task_uuid)]))
    await asyncio.sleep(0.2)
    poller = await _authed(standin)
    processing = await _ask(poller, {"taskType": "getResponse", "taskUUID": task_uuid})
    [item] = processing["data"]
    assert (item["taskType"], item["taskUUID"], item["status"]) == (
        "imageInference",
        task_uuid,
        "processing",
    )
    assert "imageBase64Data" not in item
    answer = json.loads(await asyncio.wait_for(producer.recv(), 5))
    done = await _ask(poller, {"taskType": "getResponse", "taskUUID": task_uuid})
    [item] = done["data"]
    assert item["status"] == "success"
    assert item["imageUUID"] == answer["data"][0]["imageUUID"] == processing["data"][0]["imageUUID"]
    assert base64.b64decode(item["imageBase64Data"]) == render_image(PROMPT, 5, 256, 256, "PNG")
    assert item["cost"] == COST and item["seed"] == 5

    details = await _ask(poller, {"taskType": "getTaskDetails", "taskUUID": task_uuid})
    [detail] = details["data"]
    assert detail["request"][0]["positivePrompt"] == PROMPT
    assert "apiKey" not in detail["request"][0]
    assert detail["response"]["data"][0]["imageUUID"] == item["imageUUID"]

    unknown = _new_uuid()
    missing = await _ask(poller, {"taskType": "getResponse", "taskUUID": unknown})
    [error] = missing["errors"]
    assert (error["code"], error["parameter"], error["taskUUID"], error["taskType"]) == (
        "taskNotFound",
        "taskUUID",
        unknown,
        "getResponse",
    )
    assert error["message"]

    conflict = await _ask(poller, _image_task(task_uuid))
    [error] = conflict["errors"]
    assert (error["code"], error["parameter"], error["taskUUID"]) == (
        "conflictTaskUUID",
        "taskUUID",
        task_uuid,
    )
    await producer.close()
    await poller.close()
    stats = standin.stats.snapshot()
    assert (stats.images_generated, stats.conflicts, stats.get_responses) == (1, 1, 3)
    assert stats.task_details == 1


async def test_a_conflict_while_the_original_is_processing(standin: RunwareStandin) -> None:
    task_uuid = _new_uuid()
    standin.faults.set(latency_s=0.5)
    first = await _authed(standin)
    await first.send(json.dumps([_image_task(task_uuid)]))
    await asyncio.sleep(0.1)
    second = await _authed(standin)
    reply = await _ask(second, _image_task(task_uuid))
    assert reply["errors"][0]["code"] == "conflictTaskUUID"
    answer = json.loads(await asyncio.wait_for(first.recv(), 5))
    assert answer["data"][0]["taskUUID"] == task_uuid
    await first.close()
    await second.close()
    assert standin.stats.snapshot().images_generated == 1


async def test_a_task_that_failed_can_be_resubmitted(
    standin: RunwareStandin, make_settings: Any
) -> None:
    """A transient error billed nothing and freed the taskUUID: the retry generates."""
    standin.faults.set(fail_next=2)
    async with RunwareImages(make_settings(max_attempts=3)) as images:
        image = await images.run_task(_new_uuid(), PROMPT, seed=2)
    assert image.resumed is False
    stats = standin.stats.snapshot()
    assert stats.calls["imageInference"] == 3
    assert len(set(stats.resent_uuids)) == 1  # always the same taskUUID
    assert stats.images_generated == 1


# --------------------------------------------------------------------------- results


@pytest.mark.parametrize(
    ("fault", "output_type", "message"),
    [
        ("wrong_size_next", "base64Data", "got a 512x256 PNG, asked for 512x512 PNG"),
        ("wrong_format_next", "base64Data", "got a 512x512 JPEG, asked for 512x512 PNG"),
        ("wrong_format_next", "URL", "got a 512x512 JPEG, asked for 512x512 PNG"),
        ("no_data_next", "base64Data", "the result has no imageBase64Data"),
        ("no_data_next", "URL", "the result has no imageURL"),
        ("no_data_next", "dataURI", "the result has no base64 imageDataURI"),
        ("garbage_next", "dataURI", "not a decodable image"),
    ],
)
async def test_invalid_results_are_billed_errors_naming_what_came_back(
    standin: RunwareStandin, make_settings: Any, fault: str, output_type: str, message: str
) -> None:
    standin.faults.set(**{fault: 1})
    task_uuid = _new_uuid()
    async with RunwareImages(make_settings(output_type=output_type, max_attempts=3)) as images:
        with pytest.raises(RunwareInvalidImage, match=message) as caught:
            await images.run_task(task_uuid, PROMPT, seed=1)
    error = caught.value
    assert error.billed is True
    assert error.paid_usd == pytest.approx(COST)
    assert error.task_uuid == task_uuid
    stats = standin.stats.snapshot()
    assert stats.images_generated == 1  # no regeneration inside run_task
    assert stats.calls["imageInference"] == 1


async def test_nsfw_is_a_billed_error_without_regeneration(
    standin: RunwareStandin, make_settings: Any
) -> None:
    standin.faults.set(nsfw_next=1)
    async with RunwareImages(make_settings()) as images:
        with pytest.raises(RunwareNSFWError, match="NSFW") as caught:
            await images.run_task(_new_uuid(), PROMPT, seed=1)
    assert caught.value.billed is True
    assert caught.value.paid_usd == pytest.approx(COST)
    assert standin.stats.snapshot().images_generated == 1


async def test_a_missing_cost_stays_none(standin: RunwareStandin, make_settings: Any) -> None:
    standin.faults.set(no_cost_next=1)
    async with RunwareImages(make_settings()) as images:
        image = await images.run_task(_new_uuid(), PROMPT, seed=1)
        assert image.cost_usd is None and image.total_cost_usd is None
        standin.faults.set(omit_cost=True, wrong_size_next=1)
        with pytest.raises(RunwareInvalidImage) as caught:
            await images.run_task(_new_uuid(), PROMPT, seed=2)
    assert caught.value.billed is True and caught.value.paid_usd is None
    assert standin.stats.snapshot().billed_usd == pytest.approx(2 * COST)


async def test_enhancement_runs_inside_run_task(
    standin: RunwareStandin, make_settings: Any
) -> None:
    async with RunwareImages(make_settings(enhance_prompt=True)) as images:
        image = await images.run_task(_new_uuid(), PROMPT, seed=5)
    assert image.enhanced_prompt and image.enhanced_prompt != PROMPT
    assert image.data == render_image(image.enhanced_prompt, 5, 512, 512, "PNG")
    assert image.enhance_cost_usd == pytest.approx(0.0002)
    stats = standin.stats.snapshot()
    assert (stats.calls["promptEnhance"], stats.calls["imageInference"]) == (1, 1)


# --------------------------------------------------------------------------- billed


async def test_a_rejected_request_is_not_billed(
    standin: RunwareStandin, make_settings: Any
) -> None:
    async with RunwareImages(make_settings(model="runware:999@9")) as images:
        with pytest.raises(RunwareRequestError) as caught:
            await images.run_task(_new_uuid(), PROMPT, seed=1)
    assert caught.value.code == "invalidModel" and caught.value.billed is False


@pytest.mark.parametrize("bad", ["not-a-uuid", "", "{12345678-1234-5678-1234-567812345678}", 42])
async def test_run_task_refuses_a_bad_task_uuid_before_any_call(
    standin: RunwareStandin, make_settings: Any, bad: Any
) -> None:
    images = RunwareImages(make_settings())
    with pytest.raises(RunwareRequestError, match="taskUUID") as caught:
        await images.run_task(bad, PROMPT, seed=1)
    assert caught.value.billed is False
    await images.close()
    assert standin.stats.snapshot().connections == 0


async def test_a_timed_out_answer_is_of_unknown_billing(
    standin: RunwareStandin, make_settings: Any
) -> None:
    task_uuid = _new_uuid()
    standin.faults.set(latency_s=1.0)
    async with RunwareImages(make_settings(request_timeout_s=0.3, max_attempts=1)) as images:
        with pytest.raises(RunwareUnavailable, match="did not finish") as caught:
            await images.run_task(task_uuid, PROMPT, seed=1)
        assert caught.value.billed is None and caught.value.task_uuid == task_uuid
        standin.faults.set(latency_s=0.0)
        image = await images.run_task(task_uuid, PROMPT, seed=1)  # settles it
    assert image.data == render_image(PROMPT, 1, 512, 512, "PNG")
    assert standin.stats.snapshot().images_generated == 1


async def test_connection_refused_is_not_billed_and_names_the_url_not_the_key() -> None:
    secret = "sk-live-DO-NOT-LEAK-0123456789"
    url = f"ws://127.0.0.1:{_free_port()}/v1"
    images = RunwareImages(RunwareSettings(api_key=secret, url=url))  # default retries
    with pytest.raises(RunwareUnreachable) as caught:
        await images.run_task(_new_uuid(), PROMPT, seed=1)
    await images.close()
    error = caught.value
    assert error.billed is False
    assert error.detail == f"Runware unreachable at {url}: connection refused"
    assert secret not in str(error) and secret not in repr(error)
    assert error.attempts == 4


async def test_dns_failure_is_not_billed() -> None:
    url = "ws://no-such-host.invalid/v1"
    settings = fast_settings(url, max_attempts=1)
    async with _Closing(RunwareImages(settings)) as images:
        with pytest.raises(RunwareUnreachable, match=r"no-such-host\.invalid") as caught:
            await images.run_task(_new_uuid(), PROMPT, seed=1)
    assert caught.value.billed is False
    assert caught.value.detail.startswith(f"Runware unreachable at {url}: ")


async def test_a_rejected_key_is_a_setup_error_not_billed(standin: RunwareStandin) -> None:
    settings = fast_settings(standin.url, api_key="wrong-key-123")
    async with _Closing(RunwareImages(settings)) as images:
        with pytest.raises(ConfigError, match="RUNWARE_API_KEY") as caught:
            await images.run_task(_new_uuid(), PROMPT, seed=1)
    assert isinstance(caught.value, RunwareAuthError) and caught.value.billed is False


async def test_hung_auth_outage_gives_up_within_the_connect_budget(
    standin: RunwareStandin,
) -> None:
    """Scaled down: connect retries stop when another attempt could end past the budget."""
    standin.faults.set(silent_auth=True)
    settings = fast_settings(
        standin.url, connect_timeout_s=0.5, connect_budget_s=1.5, max_attempts=10
    )
    async with _Closing(RunwareImages(settings)) as images:
        with pytest.raises(RunwareUnreachable, match="did not complete authentication") as e:
            await images.run_task(_new_uuid(), PROMPT, seed=1)
    # The budget, not max_attempts, ended it: 0.5 s attempts within 1.5 s.
    assert e.value.billed is False and 1 <= e.value.attempts < 10


@pytest.mark.timeout(150)
async def test_hung_auth_outage_with_default_settings_stops_on_the_connect_budget(
    standin: RunwareStandin,
) -> None:
    """Default settings (20 s connect timeout, 50 s budget): fewer attempts than
    max_attempts would allow, nothing sent, nothing billed."""
    standin.faults.set(silent_auth=True)
    settings = RunwareSettings(api_key=DEFAULT_API_KEY, url=standin.url)
    async with _Closing(RunwareImages(settings)) as images:
        with pytest.raises(RunwareUnreachable) as caught:
            await images.run_task(_new_uuid(), PROMPT, seed=1)
    assert caught.value.attempts < settings.max_attempts
    assert caught.value.billed is False
    assert standin.stats.snapshot().calls["imageInference"] == 0


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ws://127.0.0.1:99999/v1", "port"),
        ("ws://127.0.0.1:0/v1", "port"),
        ("ws://127.0.0.1:http/v1", "port"),
        ("ws:///v1", "no host"),
        ("ws://:8080/v1", "no host"),
        ("https://ws-api.runware.ai/v1", "ws:// or wss://"),
        ("ws-api.runware.ai/v1", "ws:// or wss://"),
        ("ws://exa mple.com/v1", "whitespace"),
        ("", "empty"),
    ],
)
def test_runware_url_is_validated(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="RUNWARE_URL") as caught:
        RunwareSettings(api_key="k", url=url).validate()
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    "url", ["wss://ws-api.runware.ai/v1", "ws://127.0.0.1:1/v1", "ws://[::1]:65535/v1"]
)
def test_good_runware_urls_pass(url: str) -> None:
    RunwareSettings(api_key="k", url=url).validate()


def test_image_usd_setting() -> None:
    assert RunwareSettings.from_env({"RUNWARE_API_KEY": "k"}).image_usd == pytest.approx(0.0006)
    env = {"RUNWARE_API_KEY": "k", "RUNWARE_IMAGE_USD": "0.004"}
    assert RunwareSettings.from_env(env).image_usd == pytest.approx(0.004)
    assert RunwareSettings.from_env({**env, "RUNWARE_IMAGE_USD": "0"}).image_usd == 0.0
    for bad in ("-0.01", "abc", "nan", "inf"):
        with pytest.raises(ConfigError, match="RUNWARE_IMAGE_USD"):
            RunwareSettings.from_env({**env, "RUNWARE_IMAGE_USD": bad})
    with pytest.raises(ConfigError, match="RUNWARE_IMAGE_USD"):
        RunwareSettings(api_key="k", image_usd=-1.0).validate()


def test_image_usd_on_the_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    resource = RunwareResource(api_key="k", url="ws://127.0.0.1:1/v1", image_usd=0.002)
    assert resource.settings().image_usd == pytest.approx(0.002)
    assert RunwareResource(api_key="k").settings().image_usd == pytest.approx(0.0006)
    with pytest.raises(ConfigError, match="RUNWARE_IMAGE_USD"):
        RunwareResource(api_key="k", image_usd=-0.5).settings()
    monkeypatch.setenv("RUNWARE_API_KEY", "k")
    monkeypatch.setenv("RUNWARE_IMAGE_USD", "0.0038")
    assert RunwareResource.from_env().settings().image_usd == pytest.approx(0.0038)
    monkeypatch.setenv("RUNWARE_IMAGE_USD", "cheap")
    with pytest.raises(ConfigError, match="RUNWARE_IMAGE_USD"):
        RunwareResource.from_env()
    monkeypatch.setenv("RUNWARE_URL", "ws://127.0.0.1:99999/v1")
    monkeypatch.delenv("RUNWARE_IMAGE_USD")
    with pytest.raises(ConfigError, match="RUNWARE_URL"):
        RunwareResource.from_env().settings()


class _Closing:
    """``async with`` that closes a RunwareImages without connecting it first."""

    def __init__(self, images: RunwareImages) -> None:
        self.images = images

    async def __aenter__(self) -> RunwareImages:
        return self.images

    async def __aexit__(self, *exc: object) -> None:
        await self.images.close()
