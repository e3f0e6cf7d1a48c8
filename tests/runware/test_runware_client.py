"""The real runware SDK, through RunwareImages, against the local stand-in."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import Any

import pytest
from PIL import Image

from generia_pipelines.clients.errors import ConfigError
from generia_pipelines.clients.runware import (
    RunwareImages,
    RunwareInvalidImage,
    RunwareNSFWError,
    RunwareRequestError,
    RunwareSettings,
    RunwareUnavailable,
)
from generia_pipelines.local.runware_standin import (
    RunwareStandin,
    ThreadedRunwareStandin,
    enhance_texts,
    render_image,
)

pytestmark = pytest.mark.timeout(30)

PROMPT = "a lighthouse on a cliff at dusk"
PILLOW_NAMES = {"PNG": "PNG", "JPG": "JPEG", "WEBP": "WEBP"}


@pytest.mark.parametrize("output_type", ["URL", "base64Data", "dataURI"])
@pytest.mark.parametrize(
    ("output_format", "content_type", "extension"),
    [("PNG", "image/png", ".png"), ("JPG", "image/jpeg", ".jpg"), ("WEBP", "image/webp", ".webp")],
)
async def test_every_output_type_and_format(
    standin: RunwareStandin,
    make_settings: Any,
    output_type: str,
    output_format: str,
    content_type: str,
    extension: str,
) -> None:
    settings = make_settings(output_type=output_type, output_format=output_format, width=256)
    async with RunwareImages(settings) as images:
        image = await images.generate(PROMPT, seed=7)

    assert (image.content_type, image.extension) == (content_type, extension)
    assert (image.width, image.height, image.seed) == (256, 512, 7)
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert decoded.format == PILLOW_NAMES[output_format]
        assert decoded.size == (256, 512)
    assert image.data == render_image(PROMPT, 7, 256, 512, output_format)
    assert image.model == "runware:100@1" and image.task_uuid and image.image_uuid
    stats = standin.stats.snapshot()
    assert stats.calls["imageInference"] == 1
    assert stats.calls["promptEnhance"] == 0
    assert image.enhanced_prompt is None and image.prompt == PROMPT


async def test_same_prompt_and_seed_give_same_bytes(make_settings: Any) -> None:
    async with RunwareImages(make_settings()) as images:
        first, second, other = await asyncio.gather(
            images.generate(PROMPT, seed=11),
            images.generate(PROMPT, seed=11),
            images.generate("a red fox in the snow", seed=11),
        )
    assert first.data == second.data
    assert first.task_uuid != second.task_uuid  # a fresh request object per call
    assert other.data != first.data


async def test_cost_is_recorded_per_image(standin: RunwareStandin, make_settings: Any) -> None:
    async with RunwareImages(make_settings()) as images:
        generated = [await images.generate(PROMPT, seed=s) for s in (1, 2, 3)]
        assert images.cost_usd == pytest.approx(0.0018)
        assert images.images_generated == 3
    assert [g.cost_usd for g in generated] == [pytest.approx(0.0006)] * 3
    assert generated[0].total_cost_usd == pytest.approx(0.0006)
    assert standin.stats.snapshot().cost_reported_usd == pytest.approx(0.0018)


async def test_enhancement_on_runs_once_and_is_recorded(
    standin: RunwareStandin, make_settings: Any
) -> None:
    settings = make_settings(enhance_prompt=True, enhance_versions=3, enhance_max_length=200)
    async with RunwareImages(settings) as images:
        image = await images.generate(PROMPT, seed=5)

    expected = sorted(set(enhance_texts(PROMPT, 3, 200)))[0]
    assert image.enhanced_prompt == expected
    assert image.prompt == PROMPT
    # imageInference was fed the enhanced text, not the original prompt.
    assert image.data == render_image(expected, 5, 512, 512, "PNG")
    assert image.enhance_cost_usd == pytest.approx(3 * 0.0002)
    stats = standin.stats.snapshot()
    assert stats.calls["promptEnhance"] == 1
    assert stats.calls["imageInference"] == 1


async def test_enhancement_choice_is_deterministic(make_settings: Any) -> None:
    settings = make_settings(enhance_prompt=True, enhance_versions=5)
    async with RunwareImages(settings) as images:
        chosen = {(await images.generate(PROMPT, seed=1)).enhanced_prompt for _ in range(4)}
    assert len(chosen) == 1


async def test_validation_error_is_not_retried(standin: RunwareStandin, make_settings: Any) -> None:
    async with RunwareImages(make_settings(model="runware:999@9", max_attempts=4)) as images:
        with pytest.raises(RunwareRequestError) as caught:
            await images.generate(PROMPT, seed=1)
    assert caught.value.code == "invalidModel"
    assert caught.value.task_uuid
    assert caught.value.attempts == 1
    assert standin.stats.snapshot().calls["imageInference"] == 1


async def test_transient_errors_are_retried(standin: RunwareStandin, make_settings: Any) -> None:
    standin.faults.set(fail_next=2)
    async with RunwareImages(make_settings(max_attempts=3)) as images:
        image = await images.generate(PROMPT, seed=3)
    assert image.data
    stats = standin.stats.snapshot()
    assert stats.calls["imageInference"] == 3
    assert stats.errors["timeoutProvider"] == 2


async def test_transient_errors_give_up_after_max_attempts(
    standin: RunwareStandin, make_settings: Any
) -> None:
    standin.faults.set(error_rate=1.0, error_code="internalServerError")
    async with RunwareImages(make_settings(max_attempts=3)) as images:
        with pytest.raises(RunwareUnavailable) as caught:
            await images.generate(PROMPT, seed=3)
    assert caught.value.code == "internalServerError"
    assert caught.value.attempts == 3
    assert "after 3 attempts" in str(caught.value)
    assert standin.stats.snapshot().calls["imageInference"] == 3


async def test_wrong_key_is_a_setup_error_without_the_key(
    standin: RunwareStandin, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-live-DO-NOT-LEAK-0123456789"
    caplog.set_level(logging.DEBUG)
    settings = RunwareSettings(api_key=secret, url=standin.url, connect_timeout_s=5)
    images = RunwareImages(settings)
    with pytest.raises(ConfigError) as caught:
        await images.connect()
    message = str(caught.value)
    assert "RUNWARE_API_KEY" in message and "Invalid API key" in message
    assert secret not in message
    assert secret not in repr(caught.value)
    assert secret not in repr(settings) and secret not in repr(images)
    assert secret not in caplog.text
    assert standin.stats.snapshot().auth_failures == 1
    await images.close()


async def test_key_never_reaches_the_logs_even_at_debug(
    standin: RunwareStandin, make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with RunwareImages(make_settings()) as images:
        await images.generate(PROMPT, seed=1)
    # websockets logs every frame at debug, the auth frame included: it must be scrubbed.
    assert "local-runware-key" not in caplog.text
    assert '"apiKey": "***"' in caplog.text


async def test_importing_the_sdk_keeps_global_logging(make_settings: Any) -> None:
    asyncio_logger = logging.getLogger("asyncio")
    websockets_logger = logging.getLogger("websockets")
    asyncio_logger.setLevel(logging.WARNING)
    try:
        async with RunwareImages(make_settings()) as images:
            await images.generate(PROMPT, seed=1)
        assert asyncio_logger.level == logging.WARNING
        assert websockets_logger.propagate is True
        assert not websockets_logger.handlers
    finally:
        asyncio_logger.setLevel(logging.NOTSET)


async def test_dropped_connection_mid_call_is_retried(
    standin: RunwareStandin, make_settings: Any
) -> None:
    async with RunwareImages(make_settings()) as images:
        await images.generate(PROMPT, seed=1)
        standin.faults.set(drop_next=1)
        image = await images.generate(PROMPT, seed=2)
    assert image.data == render_image(PROMPT, 2, 512, 512, "PNG")
    stats = standin.stats.snapshot()
    assert stats.drops == 1
    assert stats.calls["imageInference"] == 3
    assert stats.connections >= 2


async def test_close_leaves_no_socket_behind_after_a_drop(
    standin: RunwareStandin, make_settings: Any
) -> None:
    """After a drop the SDK reconnects twice and orphans a socket; close() must reap it."""
    async with RunwareImages(make_settings()) as images:
        standin.faults.set(drop_next=1)
        await images.generate(PROMPT, seed=1)
        await asyncio.sleep(1.6)  # the SDK's background reconnect fires about 1 s later
        await images.generate(PROMPT, seed=2)
    for _ in range(50):
        if standin.stats.snapshot().open_connections == 0:
            break
        await asyncio.sleep(0.02)
    assert standin.stats.snapshot().open_connections == 0


async def test_hung_auth_fails_within_the_connect_timeout(
    standin: RunwareStandin, make_settings: Any
) -> None:
    standin.faults.set(silent_auth=True)
    images = RunwareImages(make_settings(connect_timeout_s=0.5))
    started = time.monotonic()
    with pytest.raises(RunwareUnavailable, match=r"did not complete authentication within 0\.5s"):
        await images.connect()
    assert time.monotonic() - started < 2.5
    await images.close()


async def test_slow_answer_is_bounded_by_the_request_timeout(
    standin: RunwareStandin, make_settings: Any
) -> None:
    async with RunwareImages(make_settings(request_timeout_s=0.3, max_attempts=2)) as images:
        standin.faults.set(latency_s=2.0)
        started = time.monotonic()
        with pytest.raises(RunwareUnavailable, match=r"did not finish within 0\.3s") as caught:
            await images.generate(PROMPT, seed=1)
    assert time.monotonic() - started < 2.0
    assert caught.value.attempts == 2


async def test_connection_reset_spares_calls_still_running_on_it(
    standin: RunwareStandin, make_settings: Any
) -> None:
    """A timed-out call retires the client; a call still running on it must finish."""
    settings = make_settings(request_timeout_s=2.0, max_attempts=1, concurrency=2)
    async with RunwareImages(settings) as images:
        standin.faults.set(latency_s=3.0)
        doomed = asyncio.create_task(images.generate(PROMPT, seed=1))
        await asyncio.sleep(0.5)
        standin.faults.set(latency_s=1.8)  # answered at ~2.3 s, after the retirement at 2.0 s
        survivor = await images.generate(PROMPT, seed=2)
        with pytest.raises(RunwareUnavailable, match="did not finish"):
            await doomed
        assert survivor.data == render_image(PROMPT, 2, 512, 512, "PNG")
        standin.faults.set(latency_s=0.0)
        await images.generate(PROMPT, seed=3)  # on a fresh connection
    assert standin.stats.snapshot().connections == 2


async def test_nsfw_result_is_regenerated_once_with_a_new_seed(
    standin: RunwareStandin, make_settings: Any
) -> None:
    standin.faults.set(nsfw_next=1)
    async with RunwareImages(make_settings()) as images:
        image = await images.generate(PROMPT, seed=9)
    assert image.regenerated_for_nsfw
    assert image.seed != 9
    assert image.data == render_image(PROMPT, image.seed, 512, 512, "PNG")
    assert image.discarded_cost_usd == pytest.approx(0.0006)
    assert image.total_cost_usd == pytest.approx(0.0012)
    assert standin.stats.snapshot().calls["imageInference"] == 2


async def test_nsfw_twice_is_an_error(standin: RunwareStandin, make_settings: Any) -> None:
    standin.faults.set(nsfw_next=2)
    async with RunwareImages(make_settings()) as images:
        with pytest.raises(RunwareNSFWError, match="NSFW twice"):
            await images.generate(PROMPT, seed=9)
    assert standin.stats.snapshot().calls["imageInference"] == 2


@pytest.mark.parametrize("output_type", ["URL", "base64Data", "dataURI"])
async def test_garbage_bytes_are_rejected_not_returned(
    standin: RunwareStandin, make_settings: Any, output_type: str
) -> None:
    standin.faults.set(garbage_next=1)
    async with RunwareImages(make_settings(output_type=output_type)) as images:
        image = await images.generate(PROMPT, seed=4)
    assert image.data == render_image(PROMPT, 4, 512, 512, "PNG")
    assert image.discarded_cost_usd == pytest.approx(0.0006)
    stats = standin.stats.snapshot()
    assert stats.images_generated == 2
    assert stats.calls["imageInference"] == 2


async def test_persistent_garbage_raises(standin: RunwareStandin, make_settings: Any) -> None:
    standin.faults.set(garbage_next=100)
    async with RunwareImages(make_settings(max_attempts=2)) as images:
        with pytest.raises(RunwareInvalidImage, match="not a decodable image") as caught:
            await images.generate(PROMPT, seed=4)
    assert caught.value.attempts == 2
    # Both discarded images were billed; the error says so, for the ledger.
    assert caught.value.paid_usd == pytest.approx(2 * 0.0006)
    assert standin.stats.snapshot().cost_reported_usd == pytest.approx(caught.value.paid_usd)


async def test_wrong_format_or_size_is_rejected(
    standin: RunwareStandin, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from generia_pipelines.local.runware_standin import generation as module

    def jpeg_whatever_asked(prompt: str, seed: int, width: int, height: int, fmt: str) -> bytes:
        return render_image(prompt, seed, width // 2, height, "JPG")

    monkeypatch.setattr(module, "render_image", jpeg_whatever_asked)
    async with RunwareImages(make_settings(max_attempts=1)) as images:
        with pytest.raises(RunwareInvalidImage, match="got a 256x512 JPEG, asked for 512x512 PNG"):
            await images.generate(PROMPT, seed=4)
    async with RunwareImages(make_settings(max_attempts=1, output_format="JPG")) as images:
        with pytest.raises(RunwareInvalidImage, match="got a 256x512 JPEG, asked for 512x512 JPEG"):
            await images.generate(PROMPT, seed=4)


@pytest.mark.parametrize(("width", "height"), [(500, 512), (512, 100), (64, 512), (4096, 512)])
async def test_bad_size_is_rejected_before_any_call(
    standin: RunwareStandin, make_settings: Any, width: int, height: int
) -> None:
    images = RunwareImages(make_settings())
    with pytest.raises(RunwareRequestError, match="multiple of 64 between 128 and 2048"):
        await images.generate(PROMPT, width=width, height=height)
    with pytest.raises(ConfigError, match="multiple of 64"):
        make_settings(width=width, height=height).validate()
    await images.close()
    assert standin.stats.snapshot().connections == 0


async def test_bad_prompt_and_seed_are_rejected_before_any_call(
    standin: RunwareStandin, make_settings: Any
) -> None:
    images = RunwareImages(make_settings())
    with pytest.raises(RunwareRequestError, match="prompt"):
        await images.generate(" ")
    with pytest.raises(RunwareRequestError, match="seed"):
        await images.generate(PROMPT, seed=0)
    await images.close()
    assert standin.stats.snapshot().connections == 0


async def test_concurrency_is_capped(standin: RunwareStandin, make_settings: Any) -> None:
    standin.faults.set(latency_s=0.1)
    async with RunwareImages(make_settings(concurrency=4)) as images:
        started = time.monotonic()
        results = await asyncio.gather(*(images.generate(PROMPT, seed=s) for s in range(1, 9)))
        elapsed = time.monotonic() - started
    assert len({r.task_uuid for r in results}) == 8
    assert elapsed >= 0.2  # 8 calls of 0.1 s at most 4 at a time


def test_settings_from_env() -> None:
    env = {
        "RUNWARE_API_KEY": "k",
        "RUNWARE_URL": "ws://127.0.0.1:1/v1",
        "RUNWARE_IMAGE_MODEL": "runware:101@1",
        "RUNWARE_ENHANCE_PROMPT": "yes",
    }
    settings = RunwareSettings.from_env(env, width=768)
    assert (settings.url, settings.model, settings.enhance_prompt, settings.width) == (
        "ws://127.0.0.1:1/v1",
        "runware:101@1",
        True,
        768,
    )
    defaults = RunwareSettings.from_env({"RUNWARE_API_KEY": "k"})
    assert defaults.url == "wss://ws-api.runware.ai/v1"
    assert defaults.model == "runware:100@1" and defaults.enhance_prompt is False
    assert (defaults.width, defaults.height, defaults.output_format) == (512, 512, "PNG")
    with pytest.raises(ConfigError, match="RUNWARE_ENHANCE_PROMPT"):
        RunwareSettings.from_env({"RUNWARE_API_KEY": "k", "RUNWARE_ENHANCE_PROMPT": "maybe"})
    with pytest.raises(ConfigError, match="RUNWARE_API_KEY"):
        RunwareSettings.from_env({})
    with pytest.raises(ConfigError, match="RUNWARE_URL"):
        RunwareSettings.from_env({"RUNWARE_API_KEY": "k", "RUNWARE_URL": "https://x"})
    with pytest.raises(ConfigError, match="output_format"):
        RunwareSettings.from_env({"RUNWARE_API_KEY": "k"}, output_format="GIF")


def test_one_instance_per_event_loop() -> None:
    with ThreadedRunwareStandin(seed=2) as server:
        images = RunwareImages(RunwareSettings(api_key="local-runware-key", url=server.url))
        home = asyncio.new_event_loop()
        try:
            home.run_until_complete(images.generate(PROMPT, seed=1))

            async def elsewhere() -> None:
                await images.generate(PROMPT, seed=1)

            with pytest.raises(RuntimeError, match="one instance per event loop"):
                asyncio.run(elsewhere())
        finally:
            home.run_until_complete(images.close())
            home.close()


async def test_lost_session_resets_the_connection_and_retries(
    standin: RunwareStandin, make_settings: Any
) -> None:
    """``missingApiKey`` on a task means the socket lost its session (the SDK resent a task
    on a reconnected socket not yet authenticated): not the request's fault, so retried."""
    standin.faults.set(fail_next=1, error_code="missingApiKey")
    async with RunwareImages(make_settings(max_attempts=2)) as images:
        image = await images.generate(PROMPT, seed=3)
    assert image.data
    stats = standin.stats.snapshot()
    assert stats.errors["missingApiKey"] == 1
    assert stats.calls["imageInference"] == 2
    assert stats.connections == 2  # the connection was reset, not reused
