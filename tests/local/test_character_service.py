"""CharacterService of the local stack over a real socket: behaviour and validation."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from stack_helpers import WORLD, StackApi, expect_status

from generia_pipelines.proto import character_pb2, media_pb2, post_pb2, world_pb2

INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def test_create_ai_character_and_get_it(api: StackApi) -> None:
    created = await api.create_character(name="Ada", meta='{"role": "painter"}')
    assert created.id and created.world_id == WORLD and created.is_ai
    assert not created.HasField("real_user_id")
    assert created.meta == '{"role": "painter"}' and created.created_at.endswith("Z")
    fetched = await api.character.GetCharacter(
        character_pb2.GetCharacterRequest(character_id=created.id)
    )
    assert fetched == created


async def test_create_is_a_plain_insert_without_dedup(api: StackApi) -> None:
    first = await api.create_character(name="Twin")
    second = await api.create_character(name="Twin")
    assert first.id != second.id
    assert [c["id"] for c in await api.admin(WORLD, "characters")] == [first.id, second.id]


async def test_real_user_character_is_not_ai_and_listed_for_its_user(api: StackApi) -> None:
    human = await api.create_character(name="Bob", real_user_id="user-7")
    await api.create_character(name="Bot")  # AI: never listed
    await api.create_character(world_id="other", name="Elsewhere", real_user_id="user-7")
    assert not human.is_ai and human.real_user_id == "user-7"
    listed = await api.character.GetUserCharactersInWorld(
        character_pb2.GetUserCharactersInWorldRequest(user_id="user-7", world_id=WORLD)
    )
    assert [c.id for c in listed.characters] == [human.id]


async def test_empty_real_user_id_means_ai(api: StackApi) -> None:
    created = await api.create_character(name="Empty", real_user_id="")
    assert created.is_ai


@pytest.mark.parametrize(
    "fields",
    [
        {"world_id": "", "display_name": "Ada"},
        {"world_id": WORLD, "display_name": ""},
        {"world_id": WORLD, "display_name": "   "},
        {"world_id": WORLD, "display_name": "Ada", "meta": "{not json"},
        {"world_id": WORLD, "display_name": "Ada", "meta": ""},
    ],
)
async def test_create_character_validation(api: StackApi, fields: dict[str, str]) -> None:
    request = character_pb2.CreateCharacterRequest(**fields)
    await expect_status(api.character.CreateCharacter(request), INVALID)
    assert await api.admin(WORLD, "characters") == []


async def test_get_unknown_character_is_not_found(api: StackApi) -> None:
    error = await expect_status(
        api.character.GetCharacter(character_pb2.GetCharacterRequest(character_id="missing")),
        grpc.StatusCode.NOT_FOUND,
    )
    assert "missing" in (error.details() or "")


async def test_user_characters_require_user_and_world(api: StackApi) -> None:
    request = character_pb2.GetUserCharactersInWorldRequest(user_id="", world_id=WORLD)
    await expect_status(api.character.GetUserCharactersInWorld(request), INVALID)


async def test_update_changes_only_given_fields(api: StackApi) -> None:
    created = await api.create_character(name="Old", meta='{"a": 1}')
    updated = await api.character.UpdateCharacter(
        character_pb2.UpdateCharacterRequest(character_id=created.id, display_name="New")
    )
    assert updated.display_name == "New" and updated.meta == '{"a": 1}'
    updated = await api.character.UpdateCharacter(
        character_pb2.UpdateCharacterRequest(character_id=created.id, meta='{"b": 2}')
    )
    assert updated.display_name == "New" and updated.meta == '{"b": 2}'


async def test_update_validation(api: StackApi) -> None:
    created = await api.create_character()
    await expect_status(
        api.character.UpdateCharacter(
            character_pb2.UpdateCharacterRequest(character_id="missing", display_name="x")
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await expect_status(
        api.character.UpdateCharacter(
            character_pb2.UpdateCharacterRequest(character_id=created.id, meta="[1,")
        ),
        INVALID,
    )
    await expect_status(
        api.character.UpdateCharacter(
            character_pb2.UpdateCharacterRequest(character_id=created.id, display_name="")
        ),
        INVALID,
    )


async def test_avatar_must_be_confirmed_media_of_the_character(api: StackApi) -> None:
    ada = await api.create_character(name="Ada")
    bob = await api.create_character(name="Bob")
    avatar = media_pb2.MEDIA_TYPE_CHARACTER_AVATAR
    own_unconfirmed = await api.upload(ada.id, media_type=avatar, confirm=False)
    bobs = await api.upload(bob.id, media_type=avatar)
    own = await api.upload(ada.id, media_type=avatar)

    def update(media_id: str) -> Any:
        return api.character.UpdateCharacter(
            character_pb2.UpdateCharacterRequest(character_id=ada.id, avatar_media_id=media_id)
        )

    await expect_status(update(bobs), grpc.StatusCode.PERMISSION_DENIED)
    await expect_status(update(own_unconfirmed), grpc.StatusCode.FAILED_PRECONDITION)
    await expect_status(update("0" * 32), grpc.StatusCode.NOT_FOUND)
    updated = await update(own)
    assert updated.avatar_media_id == own


async def test_health_checks_of_every_service(api: StackApi) -> None:
    responses = [
        await api.character.HealthCheck(character_pb2.HealthCheckRequest()),
        await api.media.HealthCheck(media_pb2.HealthCheckRequest()),
        await api.post.HealthCheck(post_pb2.HealthCheckRequest()),
        await api.world.HealthCheck(world_pb2.HealthCheckRequest()),
    ]
    assert [r.status for r in responses] == ["SERVING"] * 4
