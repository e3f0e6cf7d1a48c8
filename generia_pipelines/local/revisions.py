"""Which revision of the wire contract the local stack serves, and its reflection.

The servicers are written against the compiled specification. To serve another revision,
each method is registered from the served descriptors, and its messages are copied by field
name between the served revision and the specification (the same bridge the clients use).

- ``spec``: the specification, with the later ``GetPost`` and ``GetMedia`` lookups.
- ``spec`` without lookups: the specification alone (no ``GetPost``, no ``GetMedia``).
- ``drifted``: the Character, Media and Post services as the platform's repository serves
  them at its head (``protos/platform_head/``); the World service as specified.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection

from generia_pipelines.clients.transcode import decoder, encoder
from generia_pipelines.proto import character_pb2, media_pb2, post_pb2, world_pb2

#: Lookups the specification lacks; a platform that implements only it has neither.
LOOKUPS = {"post.PostService": "GetPost", "media.MediaService": "GetMedia"}
_SPEC_FILES = (character_pb2, media_pb2, post_pb2, world_pb2)
_HEAD_FILE = "platform_head.binpb"


class Revision(enum.StrEnum):
    SPEC = "spec"
    DRIFTED = "drifted"


def served_pool(
    revision: Revision | Path, *, lookups: bool = True
) -> descriptor_pool.DescriptorPool:
    """A pool holding exactly the services the stack serves, as it serves them."""
    pool = descriptor_pool.DescriptorPool()
    for proto in served_files(revision, lookups=lookups):
        pool.Add(proto)
    return pool


def served_files(
    revision: Revision | Path, *, lookups: bool = True
) -> list[descriptor_pb2.FileDescriptorProto]:
    """The files the stack serves, as it serves them.

    ``revision`` may also be a serialized ``FileDescriptorSet``: its files replace the
    specification's files of the same packages (tests serve other drifts so).
    """
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(m.DESCRIPTOR.serialized_pb)
        for m in _SPEC_FILES
    ]
    if revision is not Revision.SPEC:
        if isinstance(revision, Path):
            data = revision.read_bytes()
        else:
            data = resources.files("generia_pipelines.local").joinpath(_HEAD_FILE).read_bytes()
        head = descriptor_pb2.FileDescriptorSet.FromString(data)
        drifted = {f.package for f in head.file}
        files = [f for f in files if f.package not in drifted] + list(head.file)
    if not lookups:
        for proto in files:
            for service in proto.service:
                lookup = LOOKUPS.get(f"{proto.package}.{service.name}")
                kept = [m for m in service.method if m.name != lookup]
                del service.method[:]
                service.method.extend(kept)
    return files


def register(
    server: grpc.aio.Server,
    servicer: Any,
    served: ServiceDescriptor,
) -> None:
    """Register ``servicer``'s methods as ``served`` describes them (bridging by name)."""
    ours = _spec_service(served.full_name)
    handlers = {
        method.name: _handler(
            getattr(servicer, method.name), ours.methods_by_name[method.name], method
        )
        for method in served.methods
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(served.full_name, handlers),)
    )


def enable_reflection(server: grpc.aio.Server, served: ServiceDescriptor) -> None:
    """Describe ``served`` (and the reflection service) to clients that ask."""
    names = (served.full_name, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server, pool=served.file.pool)


def _spec_service(full_name: str) -> ServiceDescriptor:
    for module in _SPEC_FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            if service.full_name == full_name:
                return service
    raise KeyError(full_name)


def _handler(
    behaviour: Callable[..., Any], ours: MethodDescriptor, served: MethodDescriptor
) -> grpc.RpcMethodHandler:
    ours_request = message_factory.GetMessageClass(ours.input_type)
    ours_response = message_factory.GetMessageClass(ours.output_type)
    if _same(ours, served):
        read: Callable[[bytes], Message] = ours_request.FromString
        write: Callable[[Message], bytes] = ours_response.SerializeToString
    else:
        read = decoder(message_factory.GetMessageClass(served.input_type), ours_request)
        write = encoder(message_factory.GetMessageClass(served.output_type))
    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=read, response_serializer=write
    )


def _same(ours: MethodDescriptor, served: MethodDescriptor) -> bool:
    """Whether the served messages are ours exactly (then no bridging is needed)."""
    return _messages_of(ours) == _messages_of(served)


def _messages_of(method: MethodDescriptor) -> bytes:
    """The method's file without its services: the messages and enums it defines."""
    proto = descriptor_pb2.FileDescriptorProto()
    method.containing_service.file.CopyToProto(proto)
    del proto.service[:]
    return proto.SerializeToString(deterministic=True)
