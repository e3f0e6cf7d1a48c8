"""The typed gRPC clients against the local stack: happy paths, errors, retries, idempotency."""

from __future__ import annotations

import grpc
import pytest
from clients_helpers import Clients, admin_list, png_bytes

from generia_pipelines.clients.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RpcError,
    Unavailable,
)
from generia_pipelines.clients.records import MediaType
from generia_pipelines.local.stack import ThreadedStack

WORLD = "neon-harbor"


async def _character_with_image(clients: Clients, name: str = "Mara Quill") -> tuple[str, str]:
    """An AI character and a confirmed post image of its own; returns (character, media)."""
    character = await clients.character.create_ai_character(
        WORLD, name, meta={"bio": "harbour poet"}, idempotency_key=f"characters/{WORLD}/{name}"
    )
    uploaded = await clients.uploader.upload(
        world_id=WORLD,
        character_id=character.id,
        media_type=MediaType.POST_IMAGE,
        filename="post.png",
        content_type="image/png",
        data=png_bytes(),
        idempotency_key=f"posts/{WORLD}/{name}/presign",
    )
    await clients.media.confirm(uploaded.media_id, character.id, world_id=WORLD)
    return character.id, uploaded.media_id


async def test_character_create_get_update(clients: Clients) -> None:
    created = await clients.character.create_ai_character(
        WORLD, "Ivo Brine", meta={"role": "smuggler"}, idempotency_key="characters/neon-harbor/0"
    )
    assert created.is_ai and created.real_user_id in (None, "")
    assert created.world_id == WORLD and created.display_name == "Ivo Brine"
    fetched = await clients.character.get_character(created.id)
    assert fetched.id == created.id and '"smuggler"' in (fetched.meta or "")

    avatar = await clients.uploader.upload(
        world_id=WORLD,
        character_id=created.id,
        media_type=MediaType.CHARACTER_AVATAR,
        filename="avatar.png",
        content_type="image/png",
        data=png_bytes(128),
        idempotency_key=f"avatars/{WORLD}/{created.id}",
    )
    confirmed = await clients.media.confirm(avatar.media_id, created.id, world_id=WORLD)
    assert {v.name for v in confirmed.variants} >= {"original", "medium", "thumbnail"}
    updated = await clients.character.update_character(
        created.id,
        avatar_media_id=avatar.media_id,
        world_id=WORLD,
        idempotency_key=f"avatars/{WORLD}/{created.id}/attach",
    )
    assert updated.avatar_media_id == avatar.media_id
    assert updated.display_name == "Ivo Brine"  # fields not given are left alone


async def test_full_post_cycle_and_media_record(clients: Clients) -> None:
    character_id, media_id = await _character_with_image(clients)
    media = await clients.media.get_media(media_id)
    assert media.character_id == character_id and media.media_type is MediaType.POST_IMAGE
    assert media.size == len(png_bytes())
    created = await clients.post.create_ai_post(
        world_id=WORLD,
        character_id=character_id,
        caption="Fog on the quay again.",
        media_id=media_id,
        tags=["fog", "harbor"],
        idempotency_key=f"posts/{WORLD}/2026-11-24/0",
    )
    post = await clients.post.get_post(created.post_id)
    assert (post.character_id, post.media_id, post.tags) == (
        character_id,
        media_id,
        ("fog", "harbor"),
    )


async def test_errors_name_service_method_world_and_status(clients: Clients) -> None:
    with pytest.raises(InvalidArgument) as bad:
        await clients.post.create_ai_post(
            world_id=WORLD,
            character_id="",
            caption="x",
            media_id="",
            idempotency_key="posts/neon-harbor/bad",
        )
    text = str(bad.value)
    assert "PostService.CreateAIPost" in text and WORLD in text and "INVALID_ARGUMENT" in text

    with pytest.raises(NotFound, match=r"CharacterService\.GetCharacter .*NOT_FOUND"):
        await clients.character.get_character("no-such-character", world_id=WORLD)


async def test_media_of_another_character_is_permission_denied(clients: Clients) -> None:
    _owner, media_id = await _character_with_image(clients, "Owner")
    thief, _ = await _character_with_image(clients, "Thief")
    with pytest.raises(PermissionDenied, match="PERMISSION_DENIED"):
        await clients.post.create_ai_post(
            world_id=WORLD,
            character_id=thief,
            caption="not mine",
            media_id=media_id,
            idempotency_key="posts/neon-harbor/steal",
        )


async def test_retries_unavailable_until_success(stack: ThreadedStack, clients: Clients) -> None:
    stack.faults.set("CreateCharacter", error_code="UNAVAILABLE", times=2)
    created = await clients.character.create_ai_character(
        WORLD, "Retry Rook", idempotency_key="characters/neon-harbor/retry"
    )
    stats = stack.stats.get("character.CreateCharacter")
    assert (stats.calls, stats.injected_errors) == (3, 2)
    assert (await clients.character.get_character(created.id)).display_name == "Retry Rook"


async def test_gives_up_after_max_attempts(stack: ThreadedStack, clients: Clients) -> None:
    stack.faults.set("GetCharacter", error_code="RESOURCE_EXHAUSTED", times=10)
    with pytest.raises(Unavailable) as exc:
        await clients.character.get_character("anything", world_id=WORLD)
    assert exc.value.attempts == 4 and "after 4 attempts" in str(exc.value)
    assert stack.stats.get("character.GetCharacter").calls == 4


async def test_never_retries_invalid_argument(stack: ThreadedStack, clients: Clients) -> None:
    stack.faults.set("CreateCharacter", error_code="INVALID_ARGUMENT", times=3)
    with pytest.raises(InvalidArgument) as exc:
        await clients.character.create_ai_character(
            WORLD, "Once Only", idempotency_key="characters/neon-harbor/once"
        )
    assert exc.value.attempts == 1
    assert stack.stats.get("character.CreateCharacter").calls == 1


async def test_lost_response_is_retried_without_a_duplicate(
    stack: ThreadedStack, clients: Clients
) -> None:
    stack.faults.set("CreateCharacter", drop_after_commit_rate=1.0, times=1)
    created = await clients.character.create_ai_character(
        WORLD, "Lost Reply", idempotency_key="characters/neon-harbor/lost"
    )
    stats = stack.stats.get("character.CreateCharacter")
    assert stats.dropped_responses == 1 and stats.replays == 1
    assert [c["id"] for c in await _world_characters(stack)] == [created.id]


async def test_retry_after_a_possible_commit_is_remembered_per_key(
    stack_factory,
    clients_factory,  # type: ignore[no-untyped-def]
) -> None:
    """Where the server ignores keys a lost answer makes a duplicate the client cannot see;
    it can say that the create was retried after a status that may hide a commit."""
    careless: ThreadedStack = stack_factory(honour_idempotency=False)
    clients: Clients = await clients_factory(careless)
    careless.faults.set("CreateCharacter", drop_after_commit_rate=1.0, times=1)
    lost = await clients.character.create_ai_character(
        WORLD, "Twice", idempotency_key="characters/neon-harbor/twice"
    )
    assert clients.character.uncertain_attempts("characters/neon-harbor/twice") == ("UNAVAILABLE",)
    assert len(await _world_characters(careless)) == 2  # the duplicate the log must name
    assert lost.id in {c["id"] for c in await _world_characters(careless)}

    careless.faults.set("CreateCharacter", error_code="INTERNAL", times=1)
    with pytest.raises(RpcError):  # refused before any effect: nothing uncertain
        await clients.character.create_ai_character(
            WORLD, "Once", idempotency_key="characters/neon-harbor/once"
        )
    await clients.character.create_ai_character(
        WORLD, "Once", idempotency_key="characters/neon-harbor/once"
    )
    assert clients.character.uncertain_attempts("characters/neon-harbor/once") == ()


async def test_same_key_replays_first_result(stack: ThreadedStack, clients: Clients) -> None:
    first = await clients.character.create_ai_character(
        WORLD, "Echo", idempotency_key="characters/neon-harbor/echo"
    )
    again = await clients.character.create_ai_character(
        WORLD, "Echo", idempotency_key="characters/neon-harbor/echo"
    )
    assert again.id == first.id
    assert len(await _world_characters(stack)) == 1


async def test_token_is_sent_when_configured(stack_factory, clients_factory) -> None:  # type: ignore[no-untyped-def]
    secured = stack_factory(token="tok-3f9a1c7e")
    authorised: Clients = await clients_factory(secured, token="tok-3f9a1c7e")
    made = await authorised.character.create_ai_character(
        WORLD, "Keyholder", idempotency_key="characters/neon-harbor/key"
    )
    assert made.id

    anonymous: Clients = await clients_factory(secured)
    with pytest.raises(PermissionDenied) as exc:
        await anonymous.character.get_character(made.id)
    assert exc.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert "tok-3f9a1c7e" not in str(exc.value)


async def test_world_catalog_calls(clients: Clients) -> None:
    world = await clients.world.create_world(
        name="Neon Harbor",
        prompt="A rain-soaked port city",
        characters_count=8,
        posts_count=12,
        idempotency_key="worlds/neon-harbor",
    )
    assert (await clients.world.get_world(world.id)).prompt == "A rain-soaked port city"
    await clients.world.update_world_params(world.id, {"tone": "noir"})
    assert '"noir"' in ((await clients.world.get_world(world.id)).params or "")
    assert [w.id for w in await clients.world.all_worlds(page_size=1)] == [world.id]
    with pytest.raises(NotFound):
        await clients.world.get_world("missing-world")
    for client in (clients.character, clients.media, clients.post, clients.world):
        assert await client.health()


async def test_rpc_errors_are_one_family(clients: Clients) -> None:
    with pytest.raises(RpcError):
        await clients.media.confirm("0" * 32, "nobody", world_id=WORLD)


async def _world_characters(stack: ThreadedStack) -> list[dict[str, object]]:
    return await admin_list(stack, WORLD, "characters")
