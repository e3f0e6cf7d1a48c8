"""The runware text backend through the real SDK, against a local WebSocket server.

The server speaks just enough of Runware's WebSocket protocol (authentication, ping,
``textInference`` results and errors) for the SDK to run unmodified.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from test_text_language import ENGLISH_POST, RUSSIAN_POST
from test_text_language import post_task as russian_post_task
from text_helpers import VALID_POST, as_json, post_task

from generia_pipelines.clients.errors import ConfigError
from generia_pipelines.clients.text import (
    InvalidOutputError,
    RunwareTextGenerator,
    TextProviderError,
)

RUNWARE_KEY = "rw-key-5d1e7a90c3"


class TextStandIn:
    """Authenticates one key and answers ``textInference`` tasks from a script."""

    def __init__(self) -> None:
        self.script: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            for task in json.loads(message.data):
                await ws.send_str(json.dumps(self._answer(task)))
        return ws

    def _answer(self, task: dict[str, Any]) -> dict[str, Any]:
        kind = task.get("taskType")
        if kind == "authentication":
            if task.get("apiKey") != RUNWARE_KEY:
                error = {"taskType": "authentication", "code": "invalidApiKey"}
                return {"errors": [{**error, "message": "Invalid API key"}]}
            return {"data": [{"taskType": "authentication", "connectionSessionUUID": "s-1"}]}
        if kind == "ping":
            return {"data": [{"taskType": "ping", "pong": True}]}
        self.tasks.append(task)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if "code" in step:
            return {"errors": [{"taskType": kind, "taskUUID": task["taskUUID"], **step}]}
        return {"data": [{"taskType": kind, "taskUUID": task["taskUUID"], **step}]}

    async def start(self) -> TextStandIn:
        app = web.Application()
        app.router.add_get("/v1", self._ws)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"ws://{host}:{port}/v1"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def text(content: str, finish: str = "stop", cost: float = 0.0003) -> dict[str, Any]:
    usage = {"promptTokens": 300, "completionTokens": 60, "totalTokens": 360}
    return {"text": content, "finishReason": finish, "cost": cost, "usage": usage}


@pytest.fixture
async def standin() -> AsyncIterator[TextStandIn]:
    server = await TextStandIn().start()
    try:
        yield server
    finally:
        await server.stop()


def make(server: TextStandIn, key: str = RUNWARE_KEY, **options: Any) -> RunwareTextGenerator:
    return RunwareTextGenerator(
        api_key=key, model="minimax:m2.7@0", url=server.url, connect_timeout_s=5, **options
    )


async def test_valid_reply_through_the_sdk(standin: TextStandIn) -> None:
    standin.script.append(text(as_json(VALID_POST)))
    async with make(standin, temperature=0.8, max_tokens=600) as generator:
        result = await generator.generate(post_task())

    assert result.value.tags == ["fog", "lighthouse", "dawn_watch"]
    assert result.backend == "runware" and result.model == "minimax:m2.7@0"
    assert result.usage.cost_usd == pytest.approx(0.0003)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (300, 60)
    (task,) = standin.tasks
    assert task["model"] == "minimax:m2.7@0"
    assert task["includeCost"] is True and isinstance(task["seed"], int)
    assert [m["role"] for m in task["messages"]] == ["user"]
    system = task["settings"]["systemPrompt"]
    assert "PostDraft" in system and '"image_prompt"' in system  # the schema, spelled out
    assert task["settings"]["temperature"] == 0.8 and task["settings"]["maxTokens"] == 600


async def test_schema_violation_is_reasked_then_fails(standin: TextStandIn) -> None:
    standin.script.append(text(as_json({**VALID_POST, "tags": ["Fog Bank"]})))
    async with make(standin, max_reasks=1) as generator:
        with pytest.raises(InvalidOutputError) as caught:
            await generator.generate(post_task())
    assert len(standin.tasks) == 2
    assert caught.value.fields == ("tags.0",) and "PostDraft" in str(caught.value)
    assert [m["role"] for m in standin.tasks[1]["messages"]] == ["user", "assistant", "user"]


async def test_truncated_reply_is_reasked(standin: TextStandIn) -> None:
    standin.script.extend(
        [text('{"caption": "Fog', finish="max_tokens"), text(as_json(VALID_POST))]
    )
    async with make(standin) as generator:
        result = await generator.generate(post_task())
    assert result.usage.attempts == 2
    assert result.usage.cost_usd == pytest.approx(0.0006)


async def test_api_error_is_a_provider_error(standin: TextStandIn) -> None:
    standin.script.append({"code": "invalidModel", "message": "unknown model"})
    async with make(standin) as generator:
        with pytest.raises(TextProviderError, match="invalidModel: unknown model"):
            await generator.generate(post_task())


async def test_rejected_key_is_a_setup_error_without_the_key(standin: TextStandIn) -> None:
    standin.script.append(text(as_json(VALID_POST)))
    wrong = "rw-wrong-key-000111"
    async with make(standin, key=wrong) as generator:
        with pytest.raises(ConfigError, match="RUNWARE_API_KEY was rejected") as caught:
            await generator.generate(post_task())
    assert wrong not in str(caught.value)
    assert standin.tasks == []


def test_missing_settings_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="RUNWARE_API_KEY"):
        RunwareTextGenerator(api_key="", model="m")
    with pytest.raises(ConfigError, match="GENERIA_TEXT_MODEL"):
        RunwareTextGenerator(api_key=RUNWARE_KEY, model=" ")
    assert RUNWARE_KEY not in repr(RunwareTextGenerator(api_key=RUNWARE_KEY, model="m"))


async def test_a_reply_in_the_wrong_language_is_reasked(standin: TextStandIn) -> None:
    standin.script.extend([text(as_json(ENGLISH_POST)), text(as_json(RUSSIAN_POST))])
    async with make(standin) as generator:
        result = await generator.generate(russian_post_task())
    assert result.value.caption == RUSSIAN_POST["caption"] and result.usage.attempts == 2
    system = standin.tasks[0]["settings"]["systemPrompt"]
    assert "Write every text in Russian" in system and "; in Russian" in system
    reask = standin.tasks[1]["messages"][-1]["content"]
    assert "caption: must be written in Russian" in reask
