"""The wire contract the pipeline needs, compared with the descriptors a service serves.

The platform's services evolve apart from this pipeline: a field renumbered on their side
decodes as the wrong field on ours, silently. So before the first paid call, each client
compares what it calls (method paths) and every field it reads or writes (name, number,
type, label) with what the service describes through gRPC reflection. Differences that
field names can bridge (a renumbered field, a field the pipeline may do without) are
spoken in the service's revision (see ``transcode.py``); any other difference refuses the
run with one message that lists them all. Pure: descriptors in, a verdict out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message

from generia_pipelines.errors import ConfigError, GeneriaError

CONTRACT_VARIABLE = "GENERIA_CONTRACT_CHECK"


class ContractMode(enum.StrEnum):
    """How strictly a service's served contract is checked at resource setup."""

    OFF = "off"  # no reflection; the compiled protos are trusted as they are
    WARN = "warn"  # check where reflection is served; warn and go on where it is not
    REQUIRE = "require"  # a service that cannot be checked refuses the run

    @classmethod
    def parse(cls, raw: str, variable: str = CONTRACT_VARIABLE) -> ContractMode:
        try:
            return cls(raw.strip().lower())
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise ConfigError(f"{variable}={raw!r} is not one of {choices}") from None


#: The methods the pipeline calls, per service (full names as gRPC paths spell them).
CALLED_METHODS: dict[str, tuple[str, ...]] = {
    "generia.character.CharacterService": ("CreateCharacter", "GetCharacter", "UpdateCharacter"),
    "media.MediaService": ("GetPresignedUploadURL", "ConfirmUpload", "GetMedia"),
    "post.PostService": ("CreateAIPost", "GetPost"),
    "world.WorldService": ("GetWorld", "GetWorlds", "UpdateWorldParams"),
}

#: Methods outside the specification: only the asset checks use them, and a platform may
#: lack them; the checks then say they cannot check.
OPTIONAL_METHODS = frozenset({"GetPost", "GetMedia"})

#: Fields of our messages the pipeline never reads or writes: their drift does not matter.
UNUSED_FIELDS: dict[str, frozenset[str]] = {
    "post.Post": frozenset({"display_name", "likes_count", "comments_count", "is_ai"}),
    "world.WorldResponse": frozenset({"creator_id", "is_joined"}),
}

#: Fields the pipeline can do without, and what it loses when the platform lacks them.
MAY_BE_ABSENT: dict[tuple[str, str], str] = {
    ("media.ConfirmUploadRequest", "character_id"): "the platform takes the owner from the media",
    ("post.Post", "media_id"): "the post check compares the ledger's media instead",
}

_TYPE_NAMES = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in vars(FieldDescriptor).items()
    if name.startswith("TYPE_")
}


def _message_of(fd: FieldDescriptor) -> Descriptor:
    assert fd.message_type is not None, fd.full_name  # a message field names its type
    return fd.message_type


def _enum_of(fd: FieldDescriptor) -> EnumDescriptor:
    assert fd.enum_type is not None, fd.full_name  # an enum field names its type
    return fd.enum_type


def field_shape(fd: FieldDescriptor) -> str:
    """A field as a .proto line would read: ``optional string meta = 7``."""
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        kind = _message_of(fd).full_name
    elif fd.type == FieldDescriptor.TYPE_ENUM:
        kind = _enum_of(fd).full_name
    else:
        kind = _TYPE_NAMES[fd.type]
    return f"{_label(fd)}{kind} {fd.name} = {fd.number}"


def _label(fd: FieldDescriptor) -> str:
    if fd.is_repeated:
        return "repeated "
    if fd.type != FieldDescriptor.TYPE_MESSAGE and fd.has_presence:
        return "optional "
    return ""


def _kind(fd: FieldDescriptor) -> str:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return _message_of(fd).full_name
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return _enum_of(fd).full_name
    return _TYPE_NAMES[fd.type]


@dataclass(frozen=True)
class Difference:
    """One way the served contract departs from ours; ``bridged`` if names can carry it."""

    service: str
    where: str  # "Character.meta", "method GetPost", "enum MediaType"
    ours: str
    theirs: str
    bridged: bool
    note: str = ""  # what the served number holds, or what the pipeline does without

    def __str__(self) -> str:
        verdict = "bridged by name" if self.bridged else "incompatible"
        note = f" ({self.note})" if self.note else ""
        return (
            f"{self.service.rsplit('.', 1)[-1]} {self.where}: ours '{self.ours}', "
            f"theirs '{self.theirs}'{note}; {verdict}"
        )


class ContractError(GeneriaError):
    """The platform serves a contract the pipeline cannot speak; nothing was paid yet."""

    retryable = False

    def __init__(self, service: str, address: str, differences: Iterable[Difference]) -> None:
        self.differences = tuple(differences)
        incompatible = sum(not d.bridged for d in self.differences)
        lines = "\n".join(f"  - {d}" for d in self.differences)
        super().__init__(
            f"{service} at {address} serves a contract the pipeline cannot speak "
            f"({incompatible} incompatible of {len(self.differences)} differences); "
            "the run stopped before any paid call. Bring protos/ and the pipeline to the "
            "platform's revision, or point GENERIA_*_ADDR at a platform that serves the "
            f"specification.\n{lines}"
        )


class ContractUnchecked(GeneriaError):
    """GENERIA_CONTRACT_CHECK=require, and the service's contract could not be read."""

    retryable = False


class Status(enum.StrEnum):
    OFF = "not checked (GENERIA_CONTRACT_CHECK=off)"
    MATCHES = "matches the specification"
    BRIDGED = "drifted; spoken in the platform's revision by field name"
    UNCHECKED = "not checked"


@dataclass
class ServiceContract:
    """What a client learned of its service's contract, for its calls, logs and checks."""

    service: str
    status: Status
    differences: tuple[Difference, ...] = ()
    missing_methods: frozenset[str] = frozenset()
    missing_fields: frozenset[tuple[str, str]] = frozenset()
    reason: str = ""
    #: Per method to bridge: the served (request, response) message classes.
    wire: dict[str, tuple[type[Message], type[Message]]] = field(default_factory=dict)

    @property
    def checked(self) -> bool:
        return self.status in (Status.MATCHES, Status.BRIDGED)

    def has_method(self, method: str) -> bool | None:
        """Whether the service serves ``method``; None when nobody could tell."""
        return method not in self.missing_methods if self.checked else None

    def has_field(self, message: str, name: str) -> bool | None:
        """Whether the served ``message`` (full name) has field ``name``; None if unknown."""
        return (message, name) not in self.missing_fields if self.checked else None

    def summary(self) -> str:
        """One line for the run log and the materialization metadata."""
        name = self.service.rsplit(".", 1)[-1]
        text = f"{name}: {self.status.value}"
        if self.reason:
            text += f" ({self.reason})"
        if self.differences:
            text += "".join(f"\n  - {str(d).removeprefix(name + ' ')}" for d in self.differences)
        if self.missing_methods:
            text += f"; lacks {', '.join(sorted(self.missing_methods))} (checks cannot use them)"
        return text


@dataclass
class _Comparison:
    service: str
    differences: list[Difference] = field(default_factory=list)
    missing_fields: set[tuple[str, str]] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)

    def add(self, where: str, ours: str, theirs: str, bridged: bool, note: str = "") -> None:
        self.differences.append(Difference(self.service, where, ours, theirs, bridged, note))

    def messages(self, ours: Descriptor, theirs: Descriptor) -> bool:
        """Compare two messages and the messages they hold; True if any field differs."""
        if ours.full_name in self.seen:
            return False
        self.seen.add(ours.full_name)
        before = len(self.differences)
        unused = UNUSED_FIELDS.get(ours.full_name, frozenset())
        for mine in ours.fields:
            if mine.name in unused:
                continue
            where = f"{ours.name}.{mine.name}"
            served = theirs.fields_by_name.get(mine.name)
            if served is None:
                self.missing_fields.add((ours.full_name, mine.name))
                lost = MAY_BE_ABSENT.get((ours.full_name, mine.name), "")
                notes = [_holder(theirs, mine.number), lost]
                note = "; ".join(n for n in notes if n)
                self.add(where, field_shape(mine), "absent", bool(lost), note)
                continue
            if _kind(mine) != _kind(served) or mine.is_repeated != served.is_repeated:
                self.add(where, field_shape(mine), field_shape(served), False)
                continue
            if mine.number != served.number or _label(mine) != _label(served):
                note = _holder(theirs, mine.number) if mine.number != served.number else ""
                self.add(where, field_shape(mine), field_shape(served), True, note)
            if mine.type == FieldDescriptor.TYPE_MESSAGE:
                self.messages(_message_of(mine), _message_of(served))
            elif mine.type == FieldDescriptor.TYPE_ENUM:
                self.enums(_enum_of(mine), _enum_of(served))
        return len(self.differences) > before

    def enums(self, ours: EnumDescriptor, theirs: EnumDescriptor) -> None:
        if ours.full_name in self.seen:
            return
        self.seen.add(ours.full_name)
        for value in ours.values:
            served = theirs.values_by_name.get(value.name)
            if served is None:
                self.add(f"enum {ours.name}", f"{value.name} = {value.number}", "absent", False)
            elif served.number != value.number:
                shown = f"{served.name} = {served.number}"
                self.add(f"enum {ours.name}", f"{value.name} = {value.number}", shown, True)


def _holder(theirs: Descriptor, number: int) -> str:
    """What the served message keeps under our field's number, if anything."""
    holder = theirs.fields_by_number.get(number)
    return f"their {number} is '{field_shape(holder)}'" if holder is not None else ""


def compare(
    ours: ServiceDescriptor,
    theirs: ServiceDescriptor | None,
    methods: Iterable[str],
    *,
    message_class: Callable[[Descriptor], type[Message]],
) -> ServiceContract:
    """Compare the methods the pipeline calls, and their messages, with the served ones.

    ``message_class`` builds a served message's class (from the reflected pool), for the
    methods whose messages must be spoken in the served revision.
    """
    comparison = _Comparison(ours.full_name)
    if theirs is None:
        comparison.add("service", ours.full_name, "not served at this address", False)
        return ServiceContract(ours.full_name, Status.BRIDGED, tuple(comparison.differences))
    missing_methods: set[str] = set()
    wire: dict[str, tuple[type[Message], type[Message]]] = {}
    for name in methods:
        mine: MethodDescriptor = ours.methods_by_name[name]
        served = theirs.methods_by_name.get(name)
        if served is None:
            missing_methods.add(name)
            if name not in OPTIONAL_METHODS:
                comparison.add(f"method {name}", _path(mine), "not served", False)
            continue
        if _signature(mine) != _signature(served):
            comparison.add(f"method {name}", _signature(mine), _signature(served), False)
            continue
        request_differs = comparison.messages(mine.input_type, served.input_type)
        response_differs = comparison.messages(mine.output_type, served.output_type)
        if request_differs or response_differs or _drifts(comparison, mine):
            wire[name] = (message_class(served.input_type), message_class(served.output_type))
    differences = tuple(comparison.differences)
    return ServiceContract(
        service=ours.full_name,
        status=Status.BRIDGED if differences else Status.MATCHES,
        differences=differences,
        missing_methods=frozenset(missing_methods),
        missing_fields=frozenset(comparison.missing_fields),
        wire=wire,
    )


def _drifts(comparison: _Comparison, method: MethodDescriptor) -> bool:
    """Whether a message this method carries drifted (compared earlier, for another method)."""
    names = _message_names(method.input_type) | _message_names(method.output_type)
    return any(d.where.split(".", 1)[0] in names for d in comparison.differences)


def _message_names(message: Descriptor, seen: set[str] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    if message.full_name in seen:
        return set()
    seen.add(message.full_name)
    names = {message.name}
    for fd in message.fields:
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            names |= _message_names(_message_of(fd), seen)
        elif fd.type == FieldDescriptor.TYPE_ENUM:
            names.add(f"enum {_enum_of(fd).name}")
    return names


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _signature(method: MethodDescriptor) -> str:
    def side(message: Descriptor, streaming: bool) -> str:
        return f"{'stream ' if streaming else ''}{message.full_name}"

    return (
        f"rpc {method.name}({side(method.input_type, method.client_streaming)}) returns "
        f"({side(method.output_type, method.server_streaming)})"
    )


def refuse_if_incompatible(contract: ServiceContract, address: str) -> ServiceContract:
    """Raise one ContractError listing every difference if any cannot be bridged."""
    if any(not d.bridged for d in contract.differences):
        raise ContractError(contract.service, address, contract.differences)
    return contract
