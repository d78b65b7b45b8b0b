"""Mistakes that ``mypy --strict`` must reject (checked by test_mypy.py).

Each line marked ``# E: <code>`` must get a mypy error with that code, and no
other line may get one.  Nothing here runs, and the project-wide mypy run
skips this file (pyproject.toml ``exclude``).
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from google.protobuf.struct_pb2 import Value

from kitpy import Context, Endpoint, Key, chain
from kitpy.resilience import retry
from kitpy.transport import grpc as kgrpc
from kitpy.transport.http import (
    Client,
    Server,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
)

USER: Key[str] = Key("user")


@dataclass(frozen=True)
class UppercaseRequest:
    s: str


@dataclass(frozen=True)
class CountRequest:
    s: str


@dataclass(frozen=True)
class CountResponse:
    v: int


async def uppercase(ctx: Context, request: UppercaseRequest) -> str:
    return request.s.upper()


async def count(ctx: Context, request: CountRequest) -> CountResponse:
    return CountResponse(len(request.s))


def strip_input(next: Endpoint[UppercaseRequest, str]) -> Endpoint[UppercaseRequest, str]:
    async def endpoint(ctx: Context, request: UppercaseRequest) -> str:
        return await next(ctx, UppercaseRequest(request.s.strip()))

    return endpoint


def decode_count(ctx: Context, message: Value) -> CountRequest:
    return CountRequest(message.string_value)


def encode_text(ctx: Context, response: str) -> Value:
    return Value(string_value=response)


async def needs_no_context(request: UppercaseRequest) -> str:
    return request.s


def not_async(ctx: Context, request: UppercaseRequest) -> str:
    return request.s


async def mistakes(ctx: Context, session: aiohttp.ClientSession) -> None:
    # An endpoint whose request type does not match its decoder (HTTP and gRPC).
    Server(uppercase, decode_json(CountRequest), encode_json)  # E: arg-type
    kgrpc.Server(uppercase, decode_count, encode_text)  # E: arg-type

    # A typed middleware applied to another endpoint type, directly or in a chain.
    strip_input(count)  # E: arg-type
    chain(strip_input)(count)  # E: arg-type

    # Calling an endpoint with the wrong request, or reading the wrong response type.
    await uppercase(ctx, CountRequest("x"))  # E: arg-type
    wrong: CountResponse = await uppercase(ctx, UppercaseRequest("x"))  # E: assignment

    # Functions that are not endpoints.
    missing_ctx: Endpoint[UppercaseRequest, str] = needs_no_context  # E: assignment
    not_awaitable: Endpoint[UppercaseRequest, str] = not_async  # E: assignment

    # A client whose decoder does not produce the endpoint's response type.
    client: Endpoint[CountRequest, CountResponse] = Client(
        session,
        "POST",
        "http://x/count",
        encode_json_request,
        decode_json_response(str),  # E: arg-type
    )

    # Context values are typed by their key.
    number: int | None = ctx.get(USER)  # E: assignment
    ctx.with_value(USER, 42)  # E: misc

    # Options are keyword-only.
    retry(3)  # E: call-arg
    _ = (wrong, missing_ctx, not_awaitable, client, number)
