"""The contract check: what it finds in a served revision, and what goes on the wire.

Descriptor comparisons run on pools built in memory; reflection and the bridged calls run
against real servers on real sockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.descriptor import ServiceDescriptor
from grpc_reflection.v1alpha import _async, reflection_pb2

from generia_pipelines.clients.contract import (
    CALLED_METHODS,
    ContractError,
    ContractMode,
    ContractUnchecked,
    ServiceContract,
    Status,
    compare,
    refuse_if_incompatible,
)
from generia_pipelines.clients.errors import ConfigError
from generia_pipelines.clients.grpc_base import ChannelSettings
from generia_pipelines.clients.platform import CharacterClient, MediaClient
from generia_pipelines.clients.reflection import served_descriptors
from generia_pipelines.clients.transcode import decoder, encoder
from generia_pipelines.local.revisions import Revision, served_files, served_pool
from generia_pipelines.local.stack import StackConfig, ThreadedStack
from generia_pipelines.proto import character_pb2, media_pb2, post_pb2

SPEC = {
    "generia.character.CharacterService": character_pb2,
    "media.MediaService": media_pb2,
    "post.PostService": post_pb2,
}


def _ours(full_name: str) -> ServiceDescriptor:
    module = SPEC[full_name]
    return module.DESCRIPTOR.services_by_name[full_name.rsplit(".", 1)[1]]  # type: ignore[no-any-return]


def _check(pool: descriptor_pool.DescriptorPool, full_name: str) -> ServiceContract:
    served = pool.FindServiceByName(full_name)
    return compare(
        _ours(full_name),
        served,
        CALLED_METHODS[full_name],
        message_class=message_factory.GetMessageClass,
    )


def _found(contract: ServiceContract) -> set[tuple[str, str, bool]]:
    return {(d.where, d.theirs, d.bridged) for d in contract.differences}


def test_the_specification_matches_itself() -> None:
    pool = served_pool(Revision.SPEC)
    for name in SPEC:
        contract = _check(pool, name)
        assert contract.status is Status.MATCHES and not contract.differences
        assert contract.wire == {}


def test_the_platforms_head_revision_differs_where_the_issue_says() -> None:
    pool = served_pool(Revision.DRIFTED)
    character = _check(pool, "generia.character.CharacterService")
    assert _found(character) == {
        ("Character.meta", "optional string meta = 8", True),
        ("Character.created_at", "string created_at = 9", True),
    }
    assert set(character.wire) == {"CreateCharacter", "GetCharacter", "UpdateCharacter"}
    media = _check(pool, "media.MediaService")
    assert _found(media) == {
        ("GetPresignedUploadURLRequest.character_id", "string character_id = 2", True),
        ("GetPresignedUploadURLRequest.world_id", "string world_id = 1", True),
        ("ConfirmUploadRequest.character_id", "absent", True),
    }
    assert set(media.wire) == {"GetPresignedUploadURL", "ConfirmUpload"}  # GetMedia is as ours
    post = _check(pool, "post.PostService")
    assert _found(post) == {
        ("Post.tags", "repeated string tags = 12", True),
        ("Post.media_id", "absent", True),
    }
    assert post.has_field("post.Post", "media_id") is False
    assert set(post.wire) == {"GetPost"}
    meta = next(d for d in character.differences if d.where == "Character.meta")
    assert str(meta) == (
        "CharacterService Character.meta: ours 'optional string meta = 7', theirs "
        "'optional string meta = 8' (their 7 is 'string avatar_url = 7'); bridged by name"
    )


def _edited(edit: str) -> descriptor_pool.DescriptorPool:
    """The head revision with one more drift that no field name can bridge."""
    pool = descriptor_pool.DescriptorPool()
    for copy in served_files(Revision.DRIFTED):
        for message in copy.message_type:
            if edit == "type" and message.name == "CreateCharacterRequest":
                message.field[2].type = descriptor_pb2.FieldDescriptorProto.TYPE_INT32
            if edit == "required-field" and message.name == "CreateAIPostRequest":
                del message.field[2]  # media_id
        for enum in copy.enum_type:
            if edit == "enum" and enum.name == "MediaType":
                del enum.value[4]  # MEDIA_TYPE_POST_IMAGE
        for service in copy.service:
            if edit == "method" and service.name == "PostService":
                kept = [m for m in service.method if m.name != "CreateAIPost"]
                del service.method[:]
                service.method.extend(kept)
        pool.Add(copy)
    return pool


@pytest.mark.parametrize(
    ("edit", "service", "where", "theirs"),
    [
        ("type", "generia.character.CharacterService", "CreateCharacterRequest.display_name",
         "int32 display_name = 3"),
        ("required-field", "post.PostService", "CreateAIPostRequest.media_id", "absent"),
        ("enum", "media.MediaService", "enum MediaType", "absent"),
        ("method", "post.PostService", "method CreateAIPost", "not served"),
    ],
)  # fmt: skip
def test_a_drift_names_cannot_bridge_is_refused_with_every_difference(
    edit: str, service: str, where: str, theirs: str
) -> None:
    contract = _check(_edited(edit), service)
    assert (where, theirs, False) in _found(contract)
    with pytest.raises(ContractError) as raised:
        refuse_if_incompatible(contract, "platform:50051")
    message = str(raised.value)
    assert message.startswith(f"{service} at platform:50051 serves a contract")
    assert "before any paid call" in message
    for difference in contract.differences:  # the bridged ones too, in one message
        assert str(difference) in message


def test_bytes_on_the_wire_follow_the_served_numbers() -> None:
    pool = served_pool(Revision.DRIFTED)
    wire_request = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("media.GetPresignedUploadURLRequest")
    )
    ours = media_pb2.GetPresignedUploadURLRequest(
        world_id="w1", character_id="c1", size=5, media_type=media_pb2.MEDIA_TYPE_POST_IMAGE
    )
    data = encoder(wire_request)(ours)
    # Read back as the specification would: field 1 now holds the world, 2 the character.
    as_spec = media_pb2.GetPresignedUploadURLRequest.FromString(data)
    assert (as_spec.character_id, as_spec.world_id) == ("w1", "c1")
    assert as_spec.media_type == media_pb2.MEDIA_TYPE_POST_IMAGE

    wire_character = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("generia.character.Character")
    )
    served = wire_character(id="c1", avatar_url="https://cdn/a.png", meta='{"bio": "x"}')
    read = decoder(wire_character, character_pb2.Character)(served.SerializeToString())
    assert isinstance(read, character_pb2.Character)
    assert read.meta == '{"bio": "x"}' and read.HasField("meta")
    assert read.created_at == ""


@pytest.fixture
def drifted_stack(tmp_path: Path) -> Iterator[ThreadedStack]:
    with ThreadedStack(StackConfig(tmp_path, revision=Revision.DRIFTED)) as stack:
        yield stack


async def test_a_bridged_client_reads_the_drifted_platform_correctly(
    drifted_stack: ThreadedStack,
) -> None:
    env = drifted_stack.env
    async with (
        CharacterClient(ChannelSettings(env["GENERIA_CHARACTER_ADDR"])) as characters,
        MediaClient(ChannelSettings(env["GENERIA_MEDIA_ADDR"])) as media,
    ):
        assert characters.contract.status is Status.BRIDGED
        made = await characters.create_ai_character(
            "w1", "Mira", meta={"bio": "glass"}, idempotency_key="k1"
        )
        assert made.meta == '{"bio": "glass"}' and made.world_id == "w1"
        again = await characters.get_character(made.id)
        assert again.meta == made.meta and again.created_at == made.created_at
        upload = await media.presign(
            world_id="w1",
            character_id=made.id,
            filename="a.png",
            content_type="image/png",
            size=10,
            media_type=media_pb2.MEDIA_TYPE_CHARACTER_AVATAR,  # type: ignore[arg-type]
            idempotency_key="k2",
        )
        async with httpx.AsyncClient(timeout=10) as http:
            stored = await http.get(f"{drifted_stack.http_url}/_admin/worlds/w1/media")
        (record,) = [m for m in stored.json() if m["media_id"] == upload.media_id]
        # Presigned for the right world and character, not the two swapped.
        assert (record["world_id"], record["character_id"]) == ("w1", made.id)
        assert record["object_key"].startswith(f"w1/{made.id}/avatars/")


async def test_off_asks_nothing_and_require_refuses_an_unreflecting_server(
    tmp_path: Path,
) -> None:
    with ThreadedStack(StackConfig(tmp_path, reflection=False)) as stack:
        address = stack.env["GENERIA_CHARACTER_ADDR"]
        async with CharacterClient(
            ChannelSettings(address, contract_mode=ContractMode.OFF)
        ) as client:
            assert client.contract.status is Status.OFF
        async with CharacterClient(ChannelSettings(address)) as client:
            assert client.contract.status is Status.UNCHECKED
            assert "UNIMPLEMENTED" in client.contract.reason
            assert client.contract.has_method("GetPost") is None
        strict = CharacterClient(ChannelSettings(address, contract_mode=ContractMode.REQUIRE))
        with pytest.raises(ContractUnchecked, match="GENERIA_CONTRACT_CHECK=require"):
            await strict.open()


def test_the_mode_setting_is_validated() -> None:
    assert ContractMode.parse(" Require ") is ContractMode.REQUIRE
    with pytest.raises(ConfigError, match="GENERIA_CONTRACT_CHECK='strict' is not one of off"):
        ContractMode.parse("strict")


class _OnlyTheFile(_async.ReflectionServicer):
    """A reflecting server that sends a file without its imports (allowed by the protocol)."""

    def _file_containing_symbol(self, request, fully_qualified_name):  # type: ignore[no-untyped-def]
        try:
            descriptor = self._pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            return super()._file_containing_symbol(request, fully_qualified_name)
        proto = descriptor_pb2.FileDescriptorProto()
        descriptor.CopyToProto(proto)
        return reflection_pb2.ServerReflectionResponse(
            file_descriptor_response=reflection_pb2.FileDescriptorResponse(
                file_descriptor_proto=[proto.SerializeToString()]
            ),
            original_request=request,
        )


@pytest.fixture
async def server_with_imports() -> AsyncIterator[str]:
    pool = descriptor_pool.DescriptorPool()
    timestamp = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp)
    pool.Add(timestamp)
    clock = descriptor_pb2.FileDescriptorProto(
        name="clock.proto", package="clock", dependency=["google/protobuf/timestamp.proto"]
    )
    message = clock.message_type.add(name="Now")
    message.field.add(
        name="at",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        type_name=".google.protobuf.Timestamp",
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    clock.service.add(name="Clock").method.add(
        name="Tell", input_type=".clock.Now", output_type=".clock.Now"
    )
    pool.Add(clock)
    server = grpc.aio.server()
    servicer = _OnlyTheFile(["clock.Clock"], pool=pool)
    # Reflection v1 only (no v1alpha): its messages are v1alpha's on the wire.
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "grpc.reflection.v1.ServerReflection", {"ServerReflectionInfo": handler}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_a_v1_server_is_asked_for_the_imports_it_did_not_send(
    server_with_imports: str,
) -> None:
    async with grpc.aio.insecure_channel(server_with_imports) as channel:
        served = await served_descriptors(channel, "clock.Clock", timeout_s=5)
        assert served.service is not None
        field = served.service.methods_by_name["Tell"].input_type.fields_by_name["at"]
        assert field.message_type.full_name == "google.protobuf.Timestamp"
        unknown = await served_descriptors(channel, "clock.Nothing", timeout_s=5)
        assert unknown.service is None
