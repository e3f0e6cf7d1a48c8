"""TextGenerationResource: backend chosen by config, usable from async assets, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from dagster import (
    DagsterInstance,
    InitResourceContext,
    asset,
    build_init_resource_context,
    materialize,
)
from text_helpers import API_KEY, VALID_POST, ChatServer, Step, as_json, completion, post_task

from generia_pipelines.clients.errors import ConfigError
from generia_pipelines.clients.text import BoundedTextGenerator, TextSettings
from generia_pipelines.resources.text import TextGenerationResource


@pytest.fixture
def init_context() -> Iterator[InitResourceContext]:
    """A resource init context whose ephemeral instance is disposed after the test."""
    with build_init_resource_context() as context:
        yield context


async def test_default_backend_is_local(init_context: InitResourceContext) -> None:
    resource = TextGenerationResource()
    async with resource.yield_for_execution(init_context) as ready:
        assert isinstance(ready.generator, BoundedTextGenerator)
        assert ready.generator.backend == "local"
        result = await ready.generate(post_task())
    assert result.backend == "local"
    with pytest.raises(RuntimeError, match="only usable inside a Dagster run"):
        _ = resource.generator


async def test_openai_backend_from_config(
    chat_server: ChatServer, init_context: InitResourceContext
) -> None:
    chat_server.reply(completion(as_json(VALID_POST), cost=0.001))
    resource = TextGenerationResource(
        backend="openai", base_url=chat_server.base_url, api_key=API_KEY, model="test/m"
    )
    async with resource.yield_for_execution(init_context) as ready:
        assert ready.generator.backend == "openai"
        result = await ready.generate(post_task())
    assert result.usage.cost_usd == pytest.approx(0.001)
    assert chat_server.requests[0]["model"] == "test/m"


@pytest.mark.parametrize("backend", ["gpt", "", "LOCALHOST"])
async def test_unknown_backend_is_refused_listing_the_allowed(
    backend: str, init_context: InitResourceContext
) -> None:
    resource = TextGenerationResource(backend=backend)
    with pytest.raises(ConfigError) as caught:
        async with resource.yield_for_execution(init_context):
            pass
    assert "GENERIA_TEXT_BACKEND" in str(caught.value)
    assert "local, openai, runware" in str(caught.value)


async def test_openai_without_settings_fails_at_setup_naming_the_variable(
    init_context: InitResourceContext,
) -> None:
    resource = TextGenerationResource(backend="openai", api_key=API_KEY, model="m")
    with pytest.raises(ConfigError, match="GENERIA_TEXT_BASE_URL"):
        async with resource.yield_for_execution(init_context):
            pass


async def test_concurrency_is_bounded(
    chat_server: ChatServer, init_context: InitResourceContext
) -> None:
    chat_server.reply(
        Step(200, completion(as_json(VALID_POST)).body, delay_s=0.05),
    )
    resource = TextGenerationResource(
        backend="openai",
        base_url=chat_server.base_url,
        api_key=API_KEY,
        model="m",
        max_concurrency=3,
    )
    async with resource.yield_for_execution(init_context) as ready:
        tasks = [post_task(f"posts/w/2026-11-24/{i}") for i in range(12)]
        results = await asyncio.gather(*(ready.generate(t) for t in tasks))
    assert len(results) == 12
    assert chat_server.max_in_flight == 3


def test_repr_and_settings_hide_the_key() -> None:
    resource = TextGenerationResource(backend="openai", api_key=API_KEY, model="m")
    assert API_KEY not in repr(resource) and API_KEY not in str(resource)
    assert API_KEY not in repr(resource.settings())


def test_from_env_uses_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENERIA_TEXT_BACKEND", "OpenAI")
    monkeypatch.setenv("GENERIA_TEXT_BASE_URL", "https://example.test/v1")
    monkeypatch.setenv("GENERIA_TEXT_API_KEY", API_KEY)
    monkeypatch.setenv("GENERIA_TEXT_MODEL", "vendor/model")
    resource = TextGenerationResource.from_env()
    assert resource.backend == "openai"
    # EnvVar keeps the variable's name in config; Dagster resolves it at run time.
    assert resource.api_key == "GENERIA_TEXT_API_KEY"
    settings = TextSettings.from_env()
    assert (settings.backend, settings.model, settings.api_key) == (
        "openai",
        "vendor/model",
        API_KEY,
    )


def test_runware_backend_falls_back_to_runware_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GENERIA_TEXT_BASE_URL", "GENERIA_TEXT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GENERIA_TEXT_BACKEND", "runware")
    monkeypatch.setenv("RUNWARE_API_KEY", "rw-key")
    monkeypatch.setenv("RUNWARE_URL", "ws://127.0.0.1:1/v1")
    settings = TextSettings.from_env()
    assert (settings.api_key, settings.base_url) == ("rw-key", "ws://127.0.0.1:1/v1")
    assert TextGenerationResource.from_env().api_key == "RUNWARE_API_KEY"


def test_async_asset_uses_the_resource_in_a_dagster_run() -> None:
    @asset
    async def draft(text: TextGenerationResource) -> list[str]:
        results = await asyncio.gather(
            *(text.generate(post_task(f"posts/w/2026-11-24/{i}")) for i in range(3))
        )
        return [r.value.caption for r in results]

    with DagsterInstance.ephemeral() as instance:
        local = materialize(
            [draft], resources={"text": TextGenerationResource()}, instance=instance
        )
        assert local.success
        assert len(set(local.output_for_node("draft"))) == 3

        broken = materialize(
            [draft],
            resources={"text": TextGenerationResource(backend="gpt")},
            instance=instance,
            raise_on_error=False,
        )
    assert not broken.success
    failures = [e for e in broken.all_events if e.is_failure]
    assert any("local, openai, runware" in str(e.event_specific_data) for e in failures)
