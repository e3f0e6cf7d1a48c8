"""RunwareResource inside Dagster: runs on Dagster's event loop, fails setup on a bad key."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

import dagster as dg
import pytest
from PIL import Image

from generia_pipelines.clients.errors import ConfigError
from generia_pipelines.clients.runware import GeneratedImage, RunwareImages
from generia_pipelines.local.runware_standin import ThreadedRunwareStandin
from generia_pipelines.resources.runware import RunwareResource

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedRunwareStandin]:
    with ThreadedRunwareStandin(seed=3) as running:
        yield running


@dg.asset
async def tiny_image(runware: RunwareResource) -> dg.MaterializeResult:
    images = runware.images()
    generated: tuple[GeneratedImage, ...] = await asyncio.gather(
        images.generate("a tiny test world", seed=1),
        images.generate("a tiny test world", seed=2),
    )
    assert runware.images() is images  # one client per loop, shared within the run
    return dg.MaterializeResult(
        metadata={
            "count": len(generated),
            "content_type": generated[0].content_type,
            "cost_usd": sum(g.cost_usd or 0.0 for g in generated),
            "sizes": [len(g.data) for g in generated],
        }
    )


def test_resource_materializes_inside_dagster(server: ThreadedRunwareStandin) -> None:
    before = server.stats.snapshot()
    resource = RunwareResource(
        api_key="local-runware-key", url=server.url, output_format="WEBP", output_type="URL"
    )
    result = dg.materialize([tiny_image], resources={"runware": resource})

    assert result.success
    metadata = result.asset_materializations_for_node("tiny_image")[0].metadata
    assert metadata["count"].value == 2
    assert metadata["content_type"].value == "image/webp"
    assert metadata["cost_usd"].value == pytest.approx(0.0012)
    after = server.stats.snapshot()
    assert after.calls["imageInference"] - before.calls["imageInference"] == 2
    assert after.calls["promptEnhance"] == before.calls["promptEnhance"]
    # Connected once at resource setup on Dagster's loop, reused by the asset, then closed.
    assert after.connections - before.connections == 1
    assert after.open_connections == before.open_connections


def _chain(error: BaseException | None) -> list[BaseException]:
    """The exception and its causes: Dagster wraps resource setup failures."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def test_bad_key_fails_resource_setup_without_the_key(server: ThreadedRunwareStandin) -> None:
    secret = "sk-live-resource-secret-987"
    resource = RunwareResource(api_key=secret, url=server.url)
    with pytest.raises(dg.DagsterResourceFunctionError) as caught:
        dg.materialize([tiny_image], resources={"runware": resource})
    chain = _chain(caught.value)
    assert any(isinstance(e, ConfigError) for e in chain)
    text = " ".join(f"{e!s} {e!r}" for e in chain)
    assert "RUNWARE_API_KEY" in text
    assert secret not in text


def test_bad_size_fails_resource_setup_before_connecting(server: ThreadedRunwareStandin) -> None:
    before = server.stats.snapshot().connections
    resource = RunwareResource(api_key="local-runware-key", url=server.url, width=300)
    with pytest.raises(dg.DagsterResourceFunctionError) as caught:
        dg.materialize([tiny_image], resources={"runware": resource})
    assert any(
        isinstance(e, ConfigError) and "multiple of 64" in str(e) for e in _chain(caught.value)
    )
    assert server.stats.snapshot().connections == before


def test_repr_hides_the_key() -> None:
    resource = RunwareResource(api_key="sk-live-repr-secret", url="ws://127.0.0.1:1/v1")
    assert "sk-live-repr-secret" not in repr(resource)
    assert "sk-live-repr-secret" not in str(resource)
    assert "sk-live-repr-secret" not in repr(resource.settings())


def test_from_env_reads_runware_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWARE_API_KEY", "from-env-key")
    monkeypatch.setenv("RUNWARE_URL", "ws://127.0.0.1:9/v1")
    monkeypatch.setenv("RUNWARE_IMAGE_MODEL", "runware:101@1")
    monkeypatch.setenv("RUNWARE_ENHANCE_PROMPT", "true")
    resource = RunwareResource.from_env(width=768)
    assert isinstance(resource.api_key, dg.EnvVar)
    assert resource.api_key.env_var_name == "RUNWARE_API_KEY"
    assert (resource.url, resource.image_model, resource.enhance_prompt, resource.width) == (
        "ws://127.0.0.1:9/v1",
        "runware:101@1",
        True,
        768,
    )
    monkeypatch.delenv("RUNWARE_URL")
    monkeypatch.delenv("RUNWARE_IMAGE_MODEL")
    monkeypatch.delenv("RUNWARE_ENHANCE_PROMPT")
    defaults = RunwareResource.from_env()
    assert defaults.url == "wss://ws-api.runware.ai/v1"
    assert defaults.image_model == "runware:100@1"
    assert defaults.enhance_prompt is False
    monkeypatch.setenv("RUNWARE_ENHANCE_PROMPT", "sometimes")
    with pytest.raises(ConfigError, match="RUNWARE_ENHANCE_PROMPT"):
        RunwareResource.from_env()


def test_images_needs_a_running_loop() -> None:
    resource = RunwareResource(api_key="k", url="ws://127.0.0.1:1/v1")
    with pytest.raises(RuntimeError, match="running event loop"):
        resource.images()


def test_outside_dagster_each_loop_gets_its_own_client(server: ThreadedRunwareStandin) -> None:
    resource = RunwareResource(api_key="local-runware-key", url=server.url, output_format="JPG")

    async def one() -> tuple[RunwareImages, bytes]:
        async with resource.images() as images:
            image = await images.generate("outside dagster", seed=5)
        return images, image.data

    first, data = asyncio.run(one())
    second, again = asyncio.run(one())
    assert first is not second
    assert data == again
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "JPEG"
