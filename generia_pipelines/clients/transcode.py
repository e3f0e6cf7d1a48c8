"""Speak another revision of a message by field name.

The client builds and reads the compiled (specification) messages; where the service serves
another revision, the channel's serializers copy each set field to the field of the same
name in the served message, and back. Enum values travel by name too. Fields the other side
lacks are dropped: the contract check (``contract.py``) has already refused any such field
the pipeline cannot do without.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message


def copy_by_name(source: Message, target: Message) -> Message:
    """Set on ``target`` every field set on ``source`` that ``target`` has, by name."""
    fields = target.DESCRIPTOR.fields_by_name
    for fd, value in source.ListFields():
        to = fields.get(fd.name)
        if to is None:
            continue
        repeated = fd.is_repeated
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            if repeated:
                items = getattr(target, to.name)
                for item in value:
                    copy_by_name(item, items.add())
            else:
                nested = getattr(target, to.name)
                nested.SetInParent()  # an empty message that was set stays set
                copy_by_name(value, nested)
        elif fd.type == FieldDescriptor.TYPE_ENUM:
            assert fd.enum_type is not None and to.enum_type is not None
            names = fd.enum_type.values_by_number
            numbers = to.enum_type.values_by_name
            mapped = [numbers[names[v].name].number for v in (value if repeated else [value])]
            if repeated:
                getattr(target, to.name).extend(mapped)
            else:
                setattr(target, to.name, mapped[0])
        elif repeated:
            getattr(target, to.name).extend(value)
        else:
            setattr(target, to.name, value)
    return target


def encoder(wire: type[Message]) -> Callable[[Message], bytes]:
    """Serialize a message as the ``wire`` revision of it."""

    def encode(message: Message) -> bytes:
        return copy_by_name(message, wire()).SerializeToString()

    return encode


def decoder(wire: type[Message], ours: type[Message]) -> Callable[[bytes], Message]:
    """Parse bytes of the ``wire`` revision into our message."""

    def decode(data: bytes) -> Message:
        return copy_by_name(wire.FromString(data), ours())

    return decode
