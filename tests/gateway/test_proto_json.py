"""MessageJson gives json_format's answers, through its direct path or json_format itself.

Every case runs the same input through :class:`~kitpy.gateway.proto_json.MessageJson`
and through ``json_format`` and asserts the same bytes, or the same exception
with the same message.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from google.protobuf.wrappers_pb2 import StringValue
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.stringsvc.pb import stringsvc_pb2 as pb
from kitpy.gateway.proto_json import MessageJson

_FIELD = descriptor_pb2.FieldDescriptorProto
FLAT_FIELDS = {
    "name": _FIELD.TYPE_STRING,
    "user_name": _FIELD.TYPE_STRING,  # JSON name userName
    "flag": _FIELD.TYPE_BOOL,
    "i32": _FIELD.TYPE_INT32,
    "s32": _FIELD.TYPE_SINT32,
    "sf32": _FIELD.TYPE_SFIXED32,
    "u32": _FIELD.TYPE_UINT32,
    "f32": _FIELD.TYPE_FIXED32,
}


def _messages() -> tuple[type[Message], type[Message], descriptor_pool.DescriptorPool]:
    """``test.json.Flat`` (every field type of the direct path) and ``test.json.Wide``
    (the same plus an int64, so json_format does all of it)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="test/json.proto", package="test.json", syntax="proto3"
    )
    flat = file.message_type.add(name="Flat")
    wide = file.message_type.add(name="Wide")
    for number, (name, kind) in enumerate(FLAT_FIELDS.items(), start=1):
        flat.field.add(name=name, number=number, type=kind, label=_FIELD.LABEL_OPTIONAL)
        wide.field.add(name=name, number=number, type=kind, label=_FIELD.LABEL_OPTIONAL)
    wide.field.add(name="i64", number=20, type=_FIELD.TYPE_INT64, label=_FIELD.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("test.json.Flat")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("test.json.Wide")),
        pool,
    )


Flat, Wide, POOL = _messages()


def reference_binary(message_class: type[Message], body: bytes) -> bytes:
    message = message_class()
    json_format.Parse(body, message, ignore_unknown_fields=True, descriptor_pool=POOL)
    return message.SerializeToString()


def outcome(convert: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "ok", convert(data)
    except Exception as exc:  # the type and message are what is compared
        return type(exc).__name__, str(exc)


def test_which_messages_take_the_direct_path() -> None:
    assert MessageJson(Flat).flat
    assert MessageJson(pb.UppercaseRequest).flat
    assert not MessageJson(Wide).flat  # an int64 is a JSON string
    assert not MessageJson(pb.CountResponse).flat
    assert not MessageJson(StringValue).flat  # a well-known type's JSON is a bare string
    assert repr(MessageJson(Flat)) == "MessageJson(test.json.Flat, direct)"


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "a", "userName": "b", "flag": true, "i32": -5, "u32": 7, "f32": 1}',
        b'{"user_name": "proto name", "userName": "JSON name: the last one wins"}',
        b'{"userName": "JSON name first", "user_name": "then the proto name"}',
        b'{"name": "\\u00e9t\\u00e9 \\ud83d\\ude00"}',  # escapes, a surrogate pair
        b'{"unknown": 1, "name": "x"}',  # ignored, by json_format
        b'{"[ext.field]": 1}',  # an extension name: json_format refuses it
        b'{"name": "a", "name": "b"}',  # a duplicate key
        b'{"name": "\\ud800"}',  # a lone surrogate
        b'{"name": null, "i32": 1}',  # null is the default value
        b'{"i32": 2147483648}',  # out of range
        b'{"u32": -1}',
        b'{"i32": 1.0}',  # an integral number: accepted by json_format
        b'{"i32": "12"}',  # a quoted number: accepted too
        b'{"i32": true}',
        b'{"flag": "true"}',
        b'{"name": 5}',
        b'{"name": ["a"]}',
        b'{"name": {"a": 1}}',
        b'{"name": "a"',  # malformed
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe",  # not UTF-8
        b'{"i32": 1e400}',
        b"{}",
    ],
)
def test_requests_as_json_format_parses_them(body: bytes) -> None:
    for message_class in (Flat, Wide):
        direct = outcome(MessageJson(message_class, pool=POOL).to_binary, body)
        assert direct == outcome(partial(reference_binary, message_class), body)


_KEYS = st.sampled_from([*FLAT_FIELDS, "userName", "other", "[x.y]"])
_VALUES = st.one_of(
    st.text(max_size=8),
    st.booleans(),
    st.integers(min_value=-(2**33), max_value=2**33),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_KEYS, _VALUES), max_size=6))
def test_any_json_object_parses_as_json_format_parses_it(pairs: list[tuple[str, Any]]) -> None:
    # written pair by pair, so a key may repeat (json_format refuses a duplicate key)
    body = ("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}").encode()
    for message_class in (Flat, Wide):
        direct = outcome(MessageJson(message_class, pool=POOL).to_binary, body)
        assert direct == outcome(partial(reference_binary, message_class), body)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.text(max_size=8),
            "user_name": st.text(max_size=8),
            "flag": st.booleans(),
            "i32": st.integers(min_value=-(2**31), max_value=2**31 - 1),
            "s32": st.integers(min_value=-(2**31), max_value=2**31 - 1),
            "sf32": st.integers(min_value=-(2**31), max_value=2**31 - 1),
            "u32": st.integers(min_value=0, max_value=2**32 - 1),
            "f32": st.integers(min_value=0, max_value=2**32 - 1),
        },
    )
)
def test_replies_print_as_message_to_dict_prints_them(fields: dict[str, Any]) -> None:
    payload = Flat(**fields).SerializeToString()
    printed = MessageJson(Flat, pool=POOL).to_json(payload)
    assert json.loads(printed) == json_format.MessageToDict(Flat.FromString(payload))


def test_a_reply_that_is_not_the_message_raises_as_protobuf_does() -> None:
    with pytest.raises(Exception, match="Error parsing message") as direct:
        MessageJson(Flat).to_json(b"\x0a\x05ab")  # a string field cut short
    with pytest.raises(type(direct.value)):
        Flat.FromString(b"\x0a\x05ab")


def test_other_messages_go_through_json_format() -> None:
    json_of = MessageJson(Wide, pool=POOL)
    body = b'{"i64": "9007199254740993", "name": "n"}'
    assert json_of.to_binary(body) == reference_binary(Wide, body)
    payload = Wide(**{"i64": 9007199254740993, "name": "n"}).SerializeToString()
    assert json.loads(json_of.to_json(payload)) == {"i64": "9007199254740993", "name": "n"}


def test_flat_messages_never_reach_json_format(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b'{"name": "a", "userName": "b", "flag": true, "i32": -5, "u32": 7}'
    expected = reference_binary(Flat, body)
    payload = Flat(**{"name": "x", "i32": 3}).SerializeToString()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("json_format was called")

    monkeypatch.setattr(json_format, "Parse", refuse)
    monkeypatch.setattr(json_format, "MessageToDict", refuse)
    json_of = MessageJson(Flat, pool=POOL)
    assert json_of.to_binary(body) == expected
    assert json.loads(json_of.to_json(payload)) == {"name": "x", "i32": 3}
    with pytest.raises(AssertionError, match="json_format was called"):
        json_of.to_binary(b'{"name": null}')  # not taken as it is: json_format decides
