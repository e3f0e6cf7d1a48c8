"""The gRPC resources inside real Dagster runs: configured from the environment, one channel
per run on Dagster's event loop, and setup errors that name the variable."""

from pathlib import Path

import pytest
from clients_helpers import png_bytes
from dagster import AssetExecutionContext, asset, materialize

from generia_pipelines.clients.errors import ConfigError
from generia_pipelines.clients.records import MediaType
from generia_pipelines.local.stack import ThreadedStack
from generia_pipelines.resources.grpc import (
    CharacterResource,
    MediaResource,
    PostResource,
    WorldResource,
    env_flag,
)


@asset
async def one_post(
    context: AssetExecutionContext,
    character: CharacterResource,
    media: MediaResource,
    post: PostResource,
    world: WorldResource,
) -> str:
    made = await character.client.create_ai_character(
        "res-world", "Dagster Dana", idempotency_key="characters/res-world/0"
    )
    uploaded = await media.uploader.upload(
        world_id="res-world",
        character_id=made.id,
        media_type=MediaType.POST_IMAGE,
        filename="p.png",
        content_type="image/png",
        data=png_bytes(),
        idempotency_key="posts/res-world/2026-11-24/0/presign",
    )
    await media.client.confirm(uploaded.media_id, made.id, world_id="res-world")
    created = await post.client.create_ai_post(
        world_id="res-world",
        character_id=made.id,
        caption="from a Dagster run",
        media_id=uploaded.media_id,
        idempotency_key="posts/res-world/2026-11-24/0",
    )
    context.log.info("world service configured: %s", world.configured)
    return created.post_id


def _resources() -> dict[str, object]:
    return {
        "character": CharacterResource.from_env(),
        "media": MediaResource.from_env(),
        "post": PostResource.from_env(),
        "world": WorldResource.from_env(),
    }


def test_resources_from_env_work_in_a_run(
    stack: ThreadedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    result = materialize([one_post], resources=_resources())
    assert result.success
    assert result.output_for_node("one_post")
    assert stack.stats.get("post.CreateAIPost").calls == 1


def test_token_from_env_is_sent_and_never_logged(
    stack_factory,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    secured: ThreadedStack = stack_factory(token="tok-7d1e55aa90")
    for name, value in secured.env.items():
        monkeypatch.setenv(name, value)
    result = materialize([one_post], resources=_resources())
    assert result.success
    logged = " ".join(str(event) for event in result.all_events)
    assert "tok-7d1e55aa90" not in logged


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("GENERIA_CHARACTER_ADDR", "not-an-address", "GENERIA_CHARACTER_ADDR='not-an-address'"),
        ("GENERIA_POST_ADDR", "host:99999", "GENERIA_POST_ADDR='host:99999'"),
        ("GENERIA_GRPC_CA_FILE", "/nonexistent/ca.pem", "GENERIA_GRPC_CA_FILE='/nonexistent"),
    ],
)
def test_bad_setting_fails_at_setup_naming_the_variable(
    stack: ThreadedStack,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    message: str,
) -> None:
    for name, env_value in stack.env.items():
        monkeypatch.setenv(name, env_value)
    monkeypatch.setenv(variable, value)
    result = materialize([one_post], resources=_resources(), raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_failure or "FAILURE" in e.event_type_value]
    assert any(message in str(e.event_specific_data) for e in failures), failures
    assert stack.stats.get("character.CreateCharacter").calls == 0  # nothing was attempted


def test_ca_file_that_is_not_pem(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("hello")
    resource = CharacterResource(address="127.0.0.1:1", ca_file=str(bogus))
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        resource.channel_settings().validate()


def test_tls_flag_is_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENERIA_GRPC_TLS", "maybe")
    with pytest.raises(ConfigError, match="GENERIA_GRPC_TLS='maybe' is not a boolean"):
        env_flag("GENERIA_GRPC_TLS")
    monkeypatch.setenv("GENERIA_GRPC_TLS", "TRUE")
    assert env_flag("GENERIA_GRPC_TLS") is True


def test_missing_address_is_named() -> None:
    with pytest.raises(ConfigError, match="GENERIA_MEDIA_ADDR is not set"):
        MediaResource(address="").channel_settings().validate()
