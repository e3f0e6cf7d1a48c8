"""The Runware stand-in at the protocol level: message shapes, errors, images, HTTP, threads."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image, ImageStat
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from generia_pipelines.local.runware_standin import (
    RunwareStandin,
    ThreadedRunwareStandin,
    render_image,
)

pytestmark = pytest.mark.timeout(30)


async def _ask(ws: ClientConnection, tasks: list[dict[str, Any]], answers: int = 1) -> list[Any]:
    await ws.send(json.dumps(tasks))
    return [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(answers)]


async def _authed(standin: RunwareStandin) -> ClientConnection:
    ws = await connect(standin.url)
    [reply] = await _ask(ws, [{"taskType": "authentication", "apiKey": standin.api_key}])
    assert reply["data"][0]["taskType"] == "authentication"
    uuid.UUID(reply["data"][0]["connectionSessionUUID"])
    return ws


def _image_task(**fields: Any) -> dict[str, Any]:
    task = {
        "taskType": "imageInference",
        "taskUUID": str(uuid.uuid4()),
        "model": "runware:100@1",
        "positivePrompt": "a quiet harbour",
        "width": 256,
        "height": 256,
        "numberResults": 1,
    }
    task.update(fields)
    return task


async def test_wrong_key_gets_the_api_error_shape(standin: RunwareStandin) -> None:
    async with connect(standin.url) as ws:
        [reply] = await _ask(ws, [{"taskType": "authentication", "apiKey": "nope"}])
    [error] = reply["errors"]
    assert error["code"] == "invalidApiKey"
    assert error["taskType"] == "authentication"
    assert error["parameter"] == "apiKey"
    assert "Invalid API key" in error["message"]


async def test_ping_pong_and_tasks_need_auth(standin: RunwareStandin) -> None:
    async with connect(standin.url) as ws:
        [pong] = await _ask(ws, [{"taskType": "ping", "ping": True}])
        assert pong == {"data": [{"taskType": "ping", "pong": True}]}
        task = _image_task()
        [reply] = await _ask(ws, [task])
    assert reply["errors"][0]["code"] == "missingApiKey"
    assert reply["errors"][0]["taskUUID"] == task["taskUUID"]


@pytest.mark.parametrize(
    ("fields", "code", "parameter"),
    [
        ({"width": 500}, "invalidWidth", "width"),
        ({"height": 4096}, "invalidHeight", "height"),
        ({"model": "runware:999@9"}, "invalidModel", "model"),
        ({"positivePrompt": "x"}, "invalidPositivePrompt", "positivePrompt"),
        ({"outputFormat": "GIF"}, "invalidOutputFormat", "outputFormat"),
        ({"outputType": "file"}, "invalidOutputType", "outputType"),
        ({"numberResults": 0}, "invalidNumberResults", "numberResults"),
        ({"seed": 0}, "invalidSeed", "seed"),
        ({"taskUUID": "not-a-uuid"}, "invalidTaskUUID", "taskUUID"),
    ],
)
async def test_validation_errors_carry_code_parameter_and_task_uuid(
    standin: RunwareStandin, fields: dict[str, Any], code: str, parameter: str
) -> None:
    ws = await _authed(standin)
    task = _image_task(**fields)
    [reply] = await _ask(ws, [task])
    await ws.close()
    [error] = reply["errors"]
    assert (error["code"], error["parameter"], error["taskType"]) == (
        code,
        parameter,
        "imageInference",
    )
    assert error["taskUUID"] == task["taskUUID"]
    assert error["message"] and error["documentation"].startswith("https://")


async def test_number_results_seeds_and_cost(standin: RunwareStandin) -> None:
    ws = await _authed(standin)
    task = _image_task(numberResults=3, seed=100, includeCost=True, outputType="base64Data")
    replies = await _ask(ws, [task], answers=3)
    await ws.close()
    items = [reply["data"][0] for reply in replies]
    assert sorted(item["seed"] for item in items) == [100, 101, 102]
    assert {item["taskUUID"] for item in items} == {task["taskUUID"]}
    assert len({item["imageUUID"] for item in items}) == 3
    assert all(item["cost"] == 0.0006 for item in items)
    for item in items:
        data = base64.b64decode(item["imageBase64Data"])
        assert data == render_image("a quiet harbour", item["seed"], 256, 256, "JPG")
    stats = standin.stats.snapshot()
    assert stats.images_generated == 3
    assert stats.cost_reported_usd == pytest.approx(0.0018)


async def test_url_output_is_served_over_http(standin: RunwareStandin) -> None:
    ws = await _authed(standin)
    [reply] = await _ask(ws, [_image_task(outputType="URL", outputFormat="WEBP", seed=8)])
    await ws.close()
    url = reply["data"][0]["imageURL"]
    assert url.endswith(".webp")
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(url)
        missing = await http.get(f"{standin.http_url}/images/{uuid.uuid4()}.webp")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert response.content == render_image("a quiet harbour", 8, 256, 256, "WEBP")
    assert missing.status_code == 404


async def test_prompt_enhance_and_unsupported_tasks(standin: RunwareStandin) -> None:
    ws = await _authed(standin)
    task_uuid = str(uuid.uuid4())
    replies = await _ask(
        ws,
        [
            {
                "taskType": "promptEnhance",
                "taskUUID": task_uuid,
                "prompt": "a cat",
                "promptMaxLength": 64,
                "promptVersions": 3,
                "includeCost": True,
            }
        ],
        answers=3,
    )
    texts = [reply["data"][0]["text"] for reply in replies]
    assert len(set(texts)) == 3
    assert all(t.startswith("a cat, ") and len(t) <= 64 for t in texts)
    [reply] = await _ask(ws, [{"taskType": "videoInference", "taskUUID": str(uuid.uuid4())}])
    await ws.close()
    assert reply["errors"][0]["code"] == "unsupportedTaskType"


def test_images_are_deterministic_and_prompt_dependent() -> None:
    same = [render_image("a castle in the clouds", 3, 256, 256, "PNG") for _ in range(2)]
    assert same[0] == same[1]
    assert render_image("a castle in the clouds", 4, 256, 256, "PNG") != same[0]

    def mean(prompt: str) -> list[float]:
        data = render_image(prompt, 3, 128, 128, "PNG")
        with Image.open(io.BytesIO(data)) as image:
            return list(ImageStat.Stat(image.convert("RGB")).mean)

    a, b = mean("a castle in the clouds"), mean("a submarine in the deep sea")
    assert sum(abs(x - y) for x, y in zip(a, b, strict=True)) > 30


def test_faults_refuse_unknown_names(standin_threaded: ThreadedRunwareStandin) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        standin_threaded.faults.set(latency=1)


def test_threaded_standin_starts_and_stops_quickly() -> None:
    started = time.monotonic()
    server = ThreadedRunwareStandin(timeout_s=5).start()
    url = server.url
    server.faults.set(nsfw_next=1)
    server.stop()
    assert time.monotonic() - started < 5
    assert url.startswith("ws://127.0.0.1:")


@pytest.fixture
def standin_threaded() -> Any:
    with ThreadedRunwareStandin() as server:
        yield server


async def test_rate_faults_break_a_share_and_are_counted(standin: RunwareStandin) -> None:
    """The chaos knobs: garbage bytes, dropped connections and silent auths by rate."""
    standin.faults.set(garbage_rate=1.0)
    ws = await _authed(standin)
    [reply] = await _ask(ws, [_image_task(outputType="base64Data", includeCost=True)])
    data = base64.b64decode(reply["data"][0]["imageBase64Data"])
    with pytest.raises(OSError):
        Image.open(io.BytesIO(data)).load()
    standin.faults.set(garbage_rate=0.0, drop_rate=1.0)
    await ws.send(json.dumps([_image_task()]))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    standin.faults.set(drop_rate=0.0, silent_auth_rate=1.0)
    async with connect(standin.url) as silent:
        await silent.send(json.dumps([{"taskType": "authentication", "apiKey": standin.api_key}]))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(silent.recv(), 0.3)
    stats = standin.stats.snapshot()
    assert (stats.garbage_images, stats.drops, stats.silent_auths) == (1, 1, 1)
    assert stats.cost_reported_usd == pytest.approx(0.0006)  # the garbage was billed
    [(_, _, cost, decodable)] = stats.delivered
    assert (cost, decodable) == (0.0006, False)


async def test_good_deliveries_are_remembered_by_image_and_task(standin: RunwareStandin) -> None:
    ws = await _authed(standin)
    task = _image_task(outputType="base64Data")
    [reply] = await _ask(ws, [task])
    await ws.close()
    item = reply["data"][0]
    assert list(standin.stats.snapshot().delivered) == [
        (item["imageUUID"], task["taskUUID"], 0.0, True)
    ]


async def test_a_task_sent_again_after_its_answer_is_counted(standin: RunwareStandin) -> None:
    """A used taskUUID is refused with ``conflictTaskUUID`` and billed nothing; a task
    answered with an error was not taken, so its taskUUID may be sent again."""
    ws = await _authed(standin)
    task = _image_task(includeCost=True)
    await _ask(ws, [task])
    [conflict] = await _ask(ws, [task])
    [error] = conflict["errors"]
    assert (error["code"], error["parameter"], error["taskUUID"], error["taskType"]) == (
        "conflictTaskUUID",
        "taskUUID",
        task["taskUUID"],
        "imageInference",
    )
    standin.faults.set(fail_next=1)
    failed = _image_task(includeCost=True)
    [error] = await _ask(ws, [failed])
    assert error["errors"][0]["code"] == "timeoutProvider"
    await _ask(ws, [failed])  # answered with an error first, then an image
    await ws.close()
    stats = standin.stats.snapshot()
    assert (stats.resent_tasks, stats.images_generated, stats.conflicts) == (2, 2, 1)
    assert stats.billed_usd == pytest.approx(2 * 0.0006)
    assert list(stats.resent_uuids) == [task["taskUUID"], failed["taskUUID"]]
