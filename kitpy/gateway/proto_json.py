"""Protobuf's JSON mapping for one message type, with a direct path for flat messages.

The Connect route turns every JSON request into binary protobuf and every
reply back into JSON.  ``google.protobuf.json_format`` does that field by
field in Python, and for a one-field request it is most of what the gateway
does with the call (~75 k instructions to parse, ~20 k to print).  Most RPC
messages are flat: a few strings, bools and 32-bit integers.
:class:`MessageJson` converts those directly -- the standard library's JSON
scanner (duplicate keys refused, as ``json_format`` refuses them), one
``setattr`` per field, ``ListFields`` back -- and sends everything else to
``json_format``: other field types, nested or repeated fields, oneofs and
fields with presence, well-known types, and any input the direct path does
not take exactly as it is (an unknown key, a ``null``, a number for a string,
a value out of range, malformed JSON).  So results and error messages are
always ``json_format``'s; the direct path only gets to them sooner.

Example::

    json = MessageJson(pb.UppercaseRequest)
    json.to_binary(b'{"s": "hi"}')                 # b"\\n\\x02hi"
    MessageJson(pb.UppercaseResponse).to_json(b"\\n\\x02HI")   # b'{"v":"HI"}'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message

__all__ = ["MessageJson"]

_PYTHON_TYPE: Mapping[int, type] = {
    FieldDescriptor.TYPE_STRING: str,
    FieldDescriptor.TYPE_BOOL: bool,
    FieldDescriptor.TYPE_INT32: int,
    FieldDescriptor.TYPE_SINT32: int,
    FieldDescriptor.TYPE_SFIXED32: int,
    FieldDescriptor.TYPE_UINT32: int,
    FieldDescriptor.TYPE_FIXED32: int,
}
"""The field types the direct path converts, and the one JSON value type each takes."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    values = dict(pairs)
    if len(values) != len(pairs):
        raise ValueError("duplicate key")  # json_format says which
    return values


_decode = json.JSONDecoder(object_pairs_hook=_unique).decode
_encode = msgspec.json.Encoder().encode


def _flat_fields(message_class: type[Message]) -> dict[str, tuple[str, type]] | None:
    """Each key JSON may use for a field (its JSON name and its proto name) -> (the field's
    name, the value type it takes); None when the message is not flat."""
    descriptor = message_class.DESCRIPTOR
    if descriptor.full_name.startswith("google.protobuf."):  # JSON forms of their own
        return None
    keys: dict[str, tuple[str, type]] = {}
    for field in descriptor.fields:
        kind = _PYTHON_TYPE.get(field.type)
        if kind is None or field.is_repeated or field.has_presence or field.containing_oneof:
            return None
        keys[field.name] = (field.name, kind)
    for field in descriptor.fields:  # a JSON name wins over a proto name, as in json_format
        keys[field.json_name] = (field.name, _PYTHON_TYPE[field.type])
    return keys


class MessageJson:
    """JSON to binary and back for ``message_class``, as ``json_format`` maps them.

    :meth:`to_binary` parses as ``json_format.Parse(..., ignore_unknown_fields=True)``
    and serializes; :meth:`to_json` parses binary and prints as
    ``json_format.MessageToDict`` with its defaults (JSON names, default values
    left out), encoded compactly.  ``pool`` resolves ``google.protobuf.Any``
    contents.  Each raises what ``json_format`` and protobuf raise.
    """

    __slots__ = ("_fields", "_message", "_pool", "flat")

    def __init__(self, message_class: type[Message], *, pool: DescriptorPool | None = None) -> None:
        self._message = message_class
        self._pool = pool
        self._fields = _flat_fields(message_class)
        self.flat = self._fields is not None
        """Whether the direct path serves this message type."""

    def to_binary(self, body: bytes) -> bytes:
        """The serialized message for a JSON ``body``."""
        if self._fields is not None:
            payload = self._direct(body, self._fields)
            if payload is not None:
                return payload
        message = self._message()
        json_format.Parse(body, message, ignore_unknown_fields=True, descriptor_pool=self._pool)
        return message.SerializeToString()

    def _direct(self, body: bytes, fields: dict[str, tuple[str, type]]) -> bytes | None:
        """The serialized message, or None for anything json_format should judge."""
        try:
            values = _decode(body.decode())
        except ValueError:
            return None
        if type(values) is not dict:
            return None
        message = self._message()
        try:
            for key, value in values.items():
                field = fields.get(key)
                if field is None or type(value) is not field[1]:
                    return None
                setattr(message, field[0], value)  # out of range, a lone surrogate: raises
            return message.SerializeToString()
        except (ValueError, TypeError):
            return None

    def to_json(self, payload: bytes) -> bytes:
        """The JSON for a serialized message."""
        message = self._message.FromString(payload)
        if self.flat:
            return _encode({field.json_name: value for field, value in message.ListFields()})
        return _encode(json_format.MessageToDict(message, descriptor_pool=self._pool))

    def __repr__(self) -> str:
        path = "direct" if self.flat else "json_format"
        return f"MessageJson({self._message.DESCRIPTOR.full_name}, {path})"
