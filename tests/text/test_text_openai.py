"""The OpenAI-compatible backend against a real local HTTP server."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import pytest
from text_helpers import API_KEY, VALID_POST, ChatServer, Step, as_json, completion, post_task

from generia_pipelines.clients.errors import ConfigError, GeneriaError
from generia_pipelines.clients.text import (
    InvalidOutputError,
    OpenAICompatibleGenerator,
    TextProviderError,
)

BAD_TAGS = {**VALID_POST, "tags": ["#Fog", "lighthouse"]}


def make(server: ChatServer, **overrides: object) -> OpenAICompatibleGenerator:
    options: dict[str, object] = {
        "base_url": server.base_url,
        "api_key": API_KEY,
        "model": "test/model-1",
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        **overrides,
    }
    return OpenAICompatibleGenerator(**options)  # type: ignore[arg-type]


async def test_valid_reply_is_parsed_and_request_is_complete(chat_server: ChatServer) -> None:
    chat_server.reply(completion(as_json(VALID_POST), cost=0.00042))
    async with make(chat_server) as generator:
        result = await generator.generate(post_task())

    assert result.value.tags == ["fog", "lighthouse", "dawn_watch"]
    assert result.backend == "openai" and result.model == "test/model-1"
    assert result.usage.prompt_tokens == 120 and result.usage.completion_tokens == 40
    assert result.usage.cost_usd == pytest.approx(0.00042)
    assert result.usage.attempts == 1 and result.usage.requests == 1
    assert json.loads(result.raw) == VALID_POST

    (request,) = chat_server.requests
    assert request["model"] == "test/model-1"
    assert isinstance(request["seed"], int)
    fmt = request["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "PostDraft"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["caption", "tags", "image_prompt"]
    tags = schema["properties"]["tags"]
    rule = tags["items"]["description"]
    assert "lowercase letters of any alphabet, digits or underscores" in rule
    assert "; in English" in tags["description"]  # the world's language
    assert "in English, for the image model" in schema["properties"]["image_prompt"]["description"]
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "Mira Vale" in request["messages"][1]["content"]
    assert chat_server.headers[0]["Authorization"] == f"Bearer {API_KEY}"


async def test_cost_is_none_when_the_provider_does_not_report_it(
    chat_server: ChatServer,
) -> None:
    chat_server.reply(completion(as_json(VALID_POST)))
    async with make(chat_server) as generator:
        result = await generator.generate(post_task())
    assert result.usage.cost_usd is None
    assert result.usage.total_tokens == 160


async def test_same_unit_sends_the_same_seed(chat_server: ChatServer) -> None:
    chat_server.reply(completion(as_json(VALID_POST)))
    async with make(chat_server) as generator:
        await generator.generate(post_task("posts/w/2026-11-24/0"))
        await generator.generate(post_task("posts/w/2026-11-24/0"))
        await generator.generate(post_task("posts/w/2026-11-24/1"))
    seeds = [r["seed"] for r in chat_server.requests]
    assert seeds[0] == seeds[1] != seeds[2]


async def test_invalid_json_is_reasked_with_the_reason(chat_server: ChatServer) -> None:
    chat_server.reply(
        completion("Sure! Here is your post: caption = fog", cost=0.001),
        completion(as_json(VALID_POST), cost=0.002),
    )
    async with make(chat_server) as generator:
        result = await generator.generate(post_task())

    assert result.usage.attempts == 2 and result.usage.reasks == 1
    assert result.usage.cost_usd == pytest.approx(0.003)
    assert result.usage.prompt_tokens == 240
    second = chat_server.requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == "Sure! Here is your post: caption = fog"
    assert "not valid JSON" in second[3]["content"]
    assert "PostDraft" in second[3]["content"]


async def test_code_fenced_json_is_accepted_without_a_reask(chat_server: ChatServer) -> None:
    chat_server.reply(completion("```json\n" + as_json(VALID_POST) + "\n```"))
    async with make(chat_server) as generator:
        result = await generator.generate(post_task())
    assert result.usage.attempts == 1
    assert result.value.caption == VALID_POST["caption"]


async def test_schema_violation_is_reasked_then_fails_naming_schema_and_field(
    chat_server: ChatServer,
) -> None:
    chat_server.reply(completion(as_json(BAD_TAGS)))
    async with make(chat_server) as generator:
        with pytest.raises(InvalidOutputError) as caught:
            await generator.generate(post_task())

    error = caught.value
    assert isinstance(error, GeneriaError)
    assert len(chat_server.requests) == 3  # the first ask and the default two re-asks
    assert error.attempts == 3
    assert error.schema == "PostDraft"
    assert error.fields == ("tags.0",)
    assert error.usage is not None and error.usage.prompt_tokens == 360
    message = str(error)
    assert "PostDraft" in message and "tags.0" in message and "'#Fog'" in message
    assert "posts/lantern-harbour/2026-11-24/0" in message
    assert API_KEY not in message
    reask = chat_server.requests[1]["messages"][-1]["content"]
    assert "tags.0" in reask and "a tag is lowercase letters of any alphabet" in reask


async def test_missing_and_extra_fields_are_named(chat_server: ChatServer) -> None:
    reply = {"caption": "Fog.", "tags": ["fog"], "mood": "grey"}
    chat_server.reply(completion(as_json(reply)))
    async with make(chat_server, max_reasks=0) as generator:
        with pytest.raises(InvalidOutputError) as caught:
            await generator.generate(post_task())
    assert len(chat_server.requests) == 1
    assert set(caught.value.fields) == {"image_prompt", "mood"}


async def test_truncated_reply_is_reasked(chat_server: ChatServer) -> None:
    chat_server.reply(
        completion('{"caption": "Fog rolled over the', finish_reason="length"),
        completion(as_json(VALID_POST)),
    )
    async with make(chat_server, max_tokens=50) as generator:
        result = await generator.generate(post_task())
    assert result.usage.attempts == 2
    assert chat_server.requests[0]["max_tokens"] == 50
    assert "cut off" in chat_server.requests[1]["messages"][-1]["content"]


async def test_truncation_that_persists_fails_with_the_reason(chat_server: ChatServer) -> None:
    chat_server.reply(completion(as_json(VALID_POST), finish_reason="length"))
    async with make(chat_server, max_reasks=1) as generator:
        with pytest.raises(InvalidOutputError, match="finish_reason=length"):
            await generator.generate(post_task())
    assert len(chat_server.requests) == 2


async def test_refusal_is_reasked(chat_server: ChatServer) -> None:
    chat_server.reply(
        completion(None, refusal="I can't help with that."), completion(as_json(VALID_POST))
    )
    async with make(chat_server) as generator:
        result = await generator.generate(post_task())
    assert result.usage.attempts == 2
    assert chat_server.requests[1]["messages"][2]["content"] == "(empty reply)"


async def test_rate_limit_then_success_is_retried(chat_server: ChatServer) -> None:
    chat_server.reply(
        Step(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0"}),
        Step(503, "upstream unavailable"),
        completion(as_json(VALID_POST)),
    )
    async with make(chat_server) as generator:
        result = await generator.generate(post_task())
    assert result.usage.requests == 3
    assert result.usage.attempts == 1  # transport retries are not re-asks
    assert len(chat_server.requests) == 3


async def test_server_errors_outlive_retries(chat_server: ChatServer) -> None:
    chat_server.reply(Step(500, {"error": {"message": f"boom for key {API_KEY}"}}))
    async with make(chat_server, max_attempts=3) as generator:
        with pytest.raises(TextProviderError) as caught:
            await generator.generate(post_task())
    assert len(chat_server.requests) == 3
    error = caught.value
    assert error.status == 500 and error.retryable and error.attempts == 3
    assert "boom for key ***" in str(error)
    assert API_KEY not in str(error)


async def test_client_errors_are_not_retried_and_the_key_is_scrubbed(
    chat_server: ChatServer,
) -> None:
    chat_server.reply(Step(401, {"error": {"message": f"Invalid key {API_KEY}"}}))
    async with make(chat_server) as generator:
        with pytest.raises(TextProviderError) as caught:
            await generator.generate(post_task())
    assert len(chat_server.requests) == 1
    message = str(caught.value)
    assert "HTTP 401" in message and "GENERIA_TEXT_API_KEY" in message
    assert API_KEY not in message and API_KEY not in repr(caught.value)


async def test_error_inside_a_200_is_a_provider_error(chat_server: ChatServer) -> None:
    chat_server.reply(Step(200, {"error": {"code": 400, "message": "model not found"}}))
    async with make(chat_server) as generator:
        with pytest.raises(TextProviderError, match="model not found"):
            await generator.generate(post_task())


async def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    generator = OpenAICompatibleGenerator(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=API_KEY,
        model="m",
        max_attempts=2,
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
    )
    async with generator:
        with pytest.raises(TextProviderError) as caught:
            await generator.generate(post_task())
    assert caught.value.retryable and caught.value.attempts == 2
    assert "ConnectError" in str(caught.value)


async def test_key_never_reaches_the_logs(
    chat_server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    chat_server.reply(
        Step(429, "busy", headers={"Retry-After": "0"}),
        completion("not json"),
        completion(as_json(VALID_POST)),
    )
    with caplog.at_level(logging.DEBUG):
        async with make(chat_server) as generator:
            await generator.generate(post_task())
    assert "retrying" in caplog.text and "rejected" in caplog.text
    assert API_KEY not in caplog.text


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("base_url", "GENERIA_TEXT_BASE_URL"),
        ("model", "GENERIA_TEXT_MODEL"),
        ("api_key", "GENERIA_TEXT_API_KEY"),
    ],
)
def test_missing_settings_name_the_variable(missing: str, variable: str) -> None:
    options: dict[str, Any] = {
        "base_url": "https://example.test/v1",
        "api_key": API_KEY,
        "model": "m",
    }
    options[missing] = ""
    with pytest.raises(ConfigError, match=variable) as caught:
        OpenAICompatibleGenerator(**options)
    assert API_KEY not in str(caught.value)


def test_bad_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="GENERIA_TEXT_BASE_URL='ftp://x'"):
        OpenAICompatibleGenerator(base_url="ftp://x", api_key=API_KEY, model="m")


async def test_repr_hides_the_key_and_url_is_normalised() -> None:
    generator = OpenAICompatibleGenerator(
        base_url="https://openrouter.ai/api/v1/", api_key=API_KEY, model="m"
    )
    assert generator.url == "https://openrouter.ai/api/v1/chat/completions"
    assert API_KEY not in repr(generator) and API_KEY not in str(vars(generator))
    await generator.aclose()
