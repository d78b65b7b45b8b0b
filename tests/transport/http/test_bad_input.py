"""Bad input never reaches the endpoint and never yields a 500: exact status and body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from yarl import URL

from kitpy import Context
from kitpy.transport.http import Server, add_routes, decode_json, encode_json, json_decoder

from .conftest import ServeApp


@dataclass(frozen=True, slots=True)
class Item:
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    items: list[Item]
    note: str | None = None
    tags: list[str] = field(default_factory=list)


LIMIT = 256


@pytest.fixture
async def order_url(serve_app: ServeApp) -> tuple[URL, list[Order]]:
    calls: list[Order] = []

    async def endpoint(ctx: Context, request: Order) -> dict[str, int]:
        calls.append(request)
        return {"items": len(request.items)}

    async def anything(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        return request

    app = web.Application()
    add_routes(
        app,
        {
            "POST /order": Server(endpoint, decode_json(Order, max_body_size=LIMIT), encode_json),
            "POST /any": Server(anything, decode_json(dict[str, Any]), encode_json),
            "POST /lax": Server(
                endpoint,
                decode_json(Order, ignore_unknown_fields=True, require_content_type=False),
                encode_json,
            ),
        },
    )
    return await serve_app(app), calls


def error(message: str) -> dict[str, Any]:
    return {"error": {"code": "INVALID_ARGUMENT", "message": message}}


CASES = [
    (b'{"id": "1", "items": [', 400, "malformed JSON body: Input data was truncated"),
    (b"not json", 400, "malformed JSON body: invalid character (byte 4)"),
    (b'{"id": "1", "items": []} x', 400, "malformed JSON body: trailing characters (byte 26)"),
    (b"\xff\xfe", 400, "malformed JSON body: invalid character (byte 0)"),
    (b"[1, 2]", 400, "invalid request body: Expected `object`, got `array`"),
    (b'"order"', 400, "invalid request body: Expected `object`, got `str`"),
    (b'{"id": 1, "items": []}', 400, "invalid request body: Expected `str`, got `int` - at `$.id`"),
    (b'{"items": []}', 400, "invalid request body: Object missing required field `id`"),
    (
        b'{"id": "1", "items": [], "extra": true}',
        400,
        "invalid request body: Object contains unknown field `extra`",
    ),
    (
        b'{"id": "1", "items": [{"sku": "a", "qty": "2"}]}',
        400,
        "invalid request body: Expected `int`, got `str` - at `$.items[0].qty`",
    ),
    (
        b'{"id": "1", "items": [{"sku": "a", "qty": 2, "price": 1}]}',
        400,
        "invalid request body: Object contains unknown field `price` - at `$.items[0]`",
    ),
    (
        b'{"id": "1", "items": [], "note": 5}',
        400,
        "invalid request body: Expected `str | null`, got `int` - at `$.note`",
    ),
    (b"", 400, "request body is empty; expected JSON"),
    (b'{"id": "' + b"x" * LIMIT + b'", "items": []}', 413, None),
]


@pytest.mark.parametrize(("body", "status", "message"), CASES)
async def test_bad_bodies_get_a_precise_4xx(
    order_url: tuple[URL, list[Order]],
    session: aiohttp.ClientSession,
    body: bytes,
    status: int,
    message: str | None,
) -> None:
    url, calls = order_url
    headers = {"Content-Type": "application/json"}
    async with session.post(url / "order", data=body, headers=headers) as resp:
        assert resp.status == status
        assert resp.headers["Content-Type"] == "application/json"
        expected = message or f"request body is {len(body)} bytes; the limit is {LIMIT}"
        assert await resp.json() == error(expected)
    assert calls == []


async def test_absurd_nesting_is_400(
    order_url: tuple[URL, list[Order]], session: aiohttp.ClientSession
) -> None:
    url, calls = order_url
    body = b'{"a": ' + b"[" * 100_000
    headers = {"Content-Type": "application/json"}
    async with session.post(url / "any", data=body, headers=headers) as resp:
        assert resp.status == 400
        assert await resp.json() == error("malformed JSON body: nested too deeply")
    assert calls == []


async def test_chunked_body_over_the_limit_is_413(
    order_url: tuple[URL, list[Order]], session: aiohttp.ClientSession
) -> None:
    url, calls = order_url

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 100

    async with session.post(
        url / "order", data=chunks(), headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 413
        assert await resp.json() == error(f"request body is larger than the limit of {LIMIT} bytes")
    assert calls == []


async def test_small_chunked_body_is_read(
    order_url: tuple[URL, list[Order]], session: aiohttp.ClientSession
) -> None:
    url, calls = order_url

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"id": "1", '
        yield b'"items": [{"sku": "a", "qty": 2}]}'

    async with session.post(
        url / "order", data=chunks(), headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 200
        assert await resp.json() == {"items": 1}
    assert calls == [Order(id="1", items=[Item(sku="a", qty=2)])]


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        ("text/plain", "text/plain"),
        ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
        ("application/json; charset=latin-1", "application/json; charset=latin-1"),
        (None, "none"),
    ],
)
async def test_wrong_content_type_is_415(
    order_url: tuple[URL, list[Order]],
    session: aiohttp.ClientSession,
    content_type: str | None,
    shown: str,
) -> None:
    url, calls = order_url
    headers = {} if content_type is None else {"Content-Type": content_type}
    async with session.post(
        url / "order",
        data=b'{"id": "1", "items": []}',
        headers=headers,
        skip_auto_headers=["Content-Type"],
    ) as resp:
        assert resp.status == 415
        assert await resp.json() == error(f"Content-Type must be application/json, got {shown}")
    assert calls == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/order+json",
    ],
)
async def test_json_content_types_are_accepted(
    order_url: tuple[URL, list[Order]], session: aiohttp.ClientSession, content_type: str
) -> None:
    url, _ = order_url
    async with session.post(
        url / "order", data=b'{"id": "1", "items": []}', headers={"Content-Type": content_type}
    ) as resp:
        assert resp.status == 200


async def test_lax_decoder_ignores_unknown_fields_and_content_type(
    order_url: tuple[URL, list[Order]], session: aiohttp.ClientSession
) -> None:
    url, calls = order_url
    body = b'{"id": "1", "items": [{"sku": "a", "qty": 1, "x": 0}], "extra": 1}'
    async with session.post(url / "lax", data=body, headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 200
    assert calls == [Order(id="1", items=[Item(sku="a", qty=1)])]


async def test_malformed_timeout_header_is_400(
    order_url: tuple[URL, list[Order]], session: aiohttp.ClientSession
) -> None:
    url, calls = order_url
    for value in ("-5", "1.5", "soon", "12345678901"):
        async with session.post(
            url / "order",
            data=b'{"id": "1", "items": []}',
            headers={"Content-Type": "application/json", "X-Timeout-Ms": value},
        ) as resp:
            assert resp.status == 400
            assert await resp.json() == error(
                f"invalid X-Timeout-Ms header {value!r}: "
                "expected a non-negative integer number of milliseconds"
            )
    assert calls == []


def test_json_decoder_defaults_and_nesting() -> None:
    decode = json_decoder(Order)
    assert decode(b'{"id": "1", "items": [{"sku": "a", "qty": 2}], "note": null}') == Order(
        id="1", items=[Item(sku="a", qty=2)]
    )


@dataclass(frozen=True)
class Node:
    name: str
    children: list[Node]


def test_recursive_dataclass_needs_lax_decoding() -> None:
    with pytest.raises(TypeError, match="ignore_unknown_fields=True"):
        json_decoder(Node)
    decode = json_decoder(Node, ignore_unknown_fields=True)
    assert decode(b'{"name": "a", "children": [{"name": "b", "children": []}]}') == Node(
        "a", [Node("b", [])]
    )


@pytest.mark.parametrize("with_deadline", [False, True], ids=["no-deadline", "deadline"])
async def test_body_over_the_applications_client_max_size_is_413(
    serve_app: ServeApp, session: aiohttp.ClientSession, with_deadline: bool
) -> None:
    """aiohttp's own limit (lower than the decoder's) is a 413 with the kitpy body, too."""
    calls: list[Order] = []

    async def endpoint(ctx: Context, request: Order) -> dict[str, int]:
        calls.append(request)
        return {"items": len(request.items)}

    app = web.Application(client_max_size=64)
    add_routes(app, {"POST /order": Server(endpoint, decode_json(Order), encode_json)})
    url = await serve_app(app)
    body = b'{"id": "1", "items": [], "note": "' + b"x" * 100 + b'"}'
    headers = {"Content-Type": "application/json"}
    if with_deadline:
        headers["X-Timeout-Ms"] = "5000"
    async with session.post(url / "order", data=body, headers=headers) as resp:
        assert resp.status == 413
        assert await resp.json() == error("request body is larger than the limit of 64 bytes")
    assert calls == []


@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
async def test_body_that_does_not_decompress_is_400(
    order_url: tuple[URL, list[Order]], session: aiohttp.ClientSession, chunked: bool
) -> None:
    url, calls = order_url

    async def chunks() -> AsyncIterator[bytes]:
        yield b"this is "
        yield b"not gzip"

    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    data = chunks() if chunked else b"this is not gzip"
    async with session.post(url / "order", data=data, headers=headers) as resp:
        assert resp.status == 400
        assert await resp.json() == error(
            "could not read request body: Can not decode content-encoding: gzip"
        )
    assert calls == []


class StructItem(msgspec.Struct, frozen=True):
    sku: str
    qty: int = 1


class StructOrder(msgspec.Struct, frozen=True, rename="camel"):
    order_id: str
    items: list[StructItem]
    line_notes: list[str] = msgspec.field(default_factory=list)


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    a: int


class Tagged(msgspec.Struct, tag=True):
    a: int


class StructTree(msgspec.Struct):
    name: str
    children: list[StructTree] = []


Invalid = msgspec.ValidationError


def test_structs_are_strict_by_default_at_every_level() -> None:
    decode = json_decoder(StructOrder)
    body = b'{"orderId": "1", "items": [{"sku": "a"}], "lineNotes": ["n"]}'
    assert decode(body) == StructOrder("1", [StructItem("a")], ["n"])
    with pytest.raises(Invalid, match="unknown field `extra`"):
        decode(b'{"orderId": "1", "items": [], "extra": 1}')
    with pytest.raises(
        msgspec.ValidationError, match=r"unknown field `price` - at `\$.items\[0\]`"
    ):
        decode(b'{"orderId": "1", "items": [{"sku": "a", "price": 2}]}')
    with pytest.raises(Invalid, match="missing required field `orderId`"):
        decode(b'{"items": []}')
    lax = json_decoder(StructOrder, ignore_unknown_fields=True)
    assert lax(b'{"orderId": "1", "items": [], "extra": 1}') == StructOrder("1", [])


def test_struct_tags_and_own_strictness_are_kept() -> None:
    assert json_decoder(Tagged)(b'{"type": "Tagged", "a": 1}') == Tagged(1)
    with pytest.raises(Invalid, match="unknown field `b`"):
        json_decoder(Tagged)(b'{"type": "Tagged", "a": 1, "b": 2}')
    with pytest.raises(Invalid, match="unknown field `b`"):
        json_decoder(Strict, ignore_unknown_fields=True)(b'{"a": 1, "b": 2}')


def test_recursive_struct_is_decoded_and_checked_at_the_top() -> None:
    decode = json_decoder(StructTree)
    body = b'{"name": "a", "children": [{"name": "b"}]}'
    assert decode(body) == StructTree("a", [StructTree("b")])
    with pytest.raises(Invalid, match="unknown field `x`"):
        decode(b'{"name": "a", "x": 1}')


class KindA(msgspec.Struct, tag="a", tag_field="kind"):
    x: int


class KindB(msgspec.Struct, tag="b", tag_field="kind"):
    y: str


class Envelope(msgspec.Struct):
    item: KindA | KindB
    by_name: dict[str, KindB] = {}


class Pair(msgspec.Struct, array_like=True):
    a: int
    b: str = "z"


def test_struct_unions_maps_and_arrays_stay_strict() -> None:
    decode = json_decoder(Envelope)
    assert decode(b'{"item": {"kind": "b", "y": "q"}}') == Envelope(KindB("q"))
    with pytest.raises(Invalid, match=r"unknown field `z` - at `\$.item`"):
        decode(b'{"item": {"kind": "a", "x": 1, "z": 0}}')
    with pytest.raises(Invalid, match=r"unknown field `w` - at `\$.by_name\[...\]`"):
        decode(
            b'{"item": {"kind": "a", "x": 1}, "by_name": {"k": {"kind": "b", "y": "r", "w": 1}}}'
        )
    pair = json_decoder(Pair)
    assert pair(b"[1]") == Pair(1)
    with pytest.raises(Invalid, match="at most length 2"):
        pair(b'[1, "y", 3]')
    assert json_decoder(Pair, ignore_unknown_fields=True)(b'[1, "y", 3]') == Pair(1, "y")
