"""Read a service's own descriptors through gRPC server reflection (v1alpha, else v1).

The files arrive as serialized
``FileDescriptorProto``s with their dependencies; they are loaded into a pool of their own,
apart from the compiled protos, whose packages they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_database, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, ServiceDescriptor
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection_pb2

#: Dependencies fetched one by one at most, so a server that answers oddly cannot loop us.
MAX_FILES = 64


class ReflectionUnavailable(Exception):
    """The server does not serve reflection (UNIMPLEMENTED) or could not be asked."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        super().__init__(f"{code.name}: {details}" if details else code.name)


@dataclass
class ServedDescriptors:
    """The service as the server describes it, with classes for its messages."""

    service: ServiceDescriptor | None  # None: the server does not know this service
    pool: descriptor_pool.DescriptorPool

    def message_class(self, descriptor: Descriptor) -> type[Message]:
        return message_factory.GetMessageClass(descriptor)


#: The reflection methods, in the order tried: v1alpha (every reflecting server: Go's
#: ``reflection.Register`` serves it beside v1, grpcio-reflection serves only it), then v1
#: (a server of v1 alone). Their messages are the same on the wire. The method is a
#: bidirectional stream answering each request with one response; it is called here as a
#: unary call (one request, half-close, one response), the same exchange on the wire. A
#: stream's write can race a server that refuses the method and fail as INTERNAL, hiding the
#: UNIMPLEMENTED that says "no reflection".
REFLECTION_METHODS = (
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
)


class _Reflector:
    """Asks the server one reflection question at a time, in the version it serves."""

    def __init__(
        self, channel: grpc.aio.Channel, timeout_s: float, metadata: Sequence[tuple[str, str]]
    ) -> None:
        self._methods = [
            channel.unary_unary(
                path,
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            for path in REFLECTION_METHODS
        ]
        self._timeout_s = timeout_s
        self._metadata = tuple(metadata)

    async def ask(self, request: reflection_pb2.ServerReflectionRequest) -> list[bytes] | None:
        """The serialized files of the answer; None when the server does not know it."""
        answer = await self._answer(request)
        if not answer.HasField("error_response"):
            return list(answer.file_descriptor_response.file_descriptor_proto)
        if answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]:
            return None
        raise ReflectionUnavailable(grpc.StatusCode.UNKNOWN, answer.error_response.error_message)

    async def _answer(
        self, request: reflection_pb2.ServerReflectionRequest
    ) -> reflection_pb2.ServerReflectionResponse:
        while True:
            try:
                answer: reflection_pb2.ServerReflectionResponse = await self._methods[0](
                    request, timeout=self._timeout_s, metadata=self._metadata
                )
                return answer
            except grpc.aio.AioRpcError as exc:
                if exc.code() is grpc.StatusCode.UNIMPLEMENTED and len(self._methods) > 1:
                    self._methods.pop(0)  # try the next version
                    continue
                raise ReflectionUnavailable(exc.code(), exc.details() or "") from None


async def served_descriptors(
    channel: grpc.aio.Channel,
    service: str,
    *,
    timeout_s: float,
    metadata: Sequence[tuple[str, str]] = (),
) -> ServedDescriptors:
    """Ask the server on ``channel`` for ``service`` and the files it depends on."""
    reflector = _Reflector(channel, timeout_s, metadata)
    database = descriptor_database.DescriptorDatabase()
    pool = descriptor_pool.DescriptorPool(database)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=service)
    files = await reflector.ask(request)
    if files is None:
        return ServedDescriptors(None, pool)
    await _fetch_dependencies(reflector, database, _add(database, files))
    return ServedDescriptors(pool.FindServiceByName(service), pool)


def _add(
    database: descriptor_database.DescriptorDatabase, files: list[bytes]
) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """Add the files (a file sent twice is the same file; two versions of it is an error)."""
    added = {}
    for data in files:
        proto = descriptor_pb2.FileDescriptorProto.FromString(data)
        try:
            database.Add(proto)
        except descriptor_database.DescriptorDatabaseConflictingDefinitionError:
            raise ReflectionUnavailable(
                grpc.StatusCode.UNKNOWN, f"the server sent two versions of {proto.name}"
            ) from None
        added[proto.name] = proto
    return added


async def _fetch_dependencies(
    reflector: _Reflector,
    database: descriptor_database.DescriptorDatabase,
    known: dict[str, descriptor_pb2.FileDescriptorProto],
) -> None:
    """Ask for each imported file the server did not send; well-known types come from here."""
    for _ in range(MAX_FILES):
        imported = {dep for proto in known.values() for dep in proto.dependency}
        wanted = sorted(imported - known.keys())
        if not wanted:
            return
        name = wanted[0]
        files = await reflector.ask(reflection_pb2.ServerReflectionRequest(file_by_filename=name))
        if files is None:
            proto = descriptor_pb2.FileDescriptorProto()
            try:
                descriptor_pool.Default().FindFileByName(name).CopyToProto(proto)
            except KeyError:
                raise ReflectionUnavailable(
                    grpc.StatusCode.NOT_FOUND, f"the server cannot describe {name}"
                ) from None
            files = [proto.SerializeToString()]
        known.update(_add(database, files))
    raise ReflectionUnavailable(grpc.StatusCode.UNKNOWN, f"more than {MAX_FILES} files")
