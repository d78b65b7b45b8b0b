"""Auth over real gRPC: kitpy's grpc.aio Server on 127.0.0.1, port 0, real calls.

The hostile-token matrix for HS256, RS256, ES256 and EdDSA in ``authorization``
metadata: every bad token is UNAUTHENTICATED with the fixed message and a
``www-authenticate`` trailer, and the service endpoint is never called.  Plus
scopes (PERMISSION_DENIED) and the client side (``jwt_signer`` + ``context_to_grpc``).
Messages are protobuf's own ``StringValue``, so no generated code is needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from kitpy import Context, PermissionDenied, Unauthenticated, chain
from kitpy.auth import CLAIMS, context_to_grpc, grpc_to_context, require_scopes
from kitpy.auth.jwt import KeySet, jwt_parser, jwt_signer
from kitpy.transport.grpc import Client, Server
from tests.auth.tokens import AUDIENCE, CASE_IDS, CASES, ISSUER, KID, Algo, Case, good_claims

SERVICE = "kitpy.test.Auth"


@dataclass
class Service:
    """The protected service: counts calls so a test can prove it never ran."""

    channel: grpc.aio.Channel | None = None
    calls: int = 0

    async def call(self, method: str, token: str | None) -> StringValue:
        assert self.channel is not None
        multi = self.channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        metadata = () if token is None else (("authorization", f"Bearer {token}"),)
        reply: StringValue = await multi(StringValue(value="hi"), metadata=metadata, timeout=10)
        return reply


@pytest.fixture
async def service(algo: Algo) -> AsyncIterator[Service]:
    svc = Service()

    async def echo(ctx: Context, request: str) -> str:
        svc.calls += 1
        return f"{request}:{ctx[CLAIMS]['sub']}"

    parser = jwt_parser(
        KeySet({KID: algo.public}), algorithms=[algo.name], audience=AUDIENCE, issuer=ISSUER,
        leeway=5, required_claims=["sub"],
    )  # fmt: skip

    def serve(endpoint: Any) -> Any:
        kit: Server[str, str, StringValue, StringValue] = Server(
            endpoint, lambda ctx, m: m.value, lambda ctx, r: StringValue(value=r),
            before=[grpc_to_context],
        )  # fmt: skip

        async def handler(message: StringValue, context: Any) -> StringValue:
            return await kit(message, context)

        return grpc.unary_unary_rpc_method_handler(
            handler,
            request_deserializer=StringValue.FromString,
            response_serializer=StringValue.SerializeToString,
        )

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Echo": serve(parser(echo)),
                    "Admin": serve(chain(parser, require_scopes("strings:admin"))(echo)),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = svc.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield svc
    finally:
        await channel.close()
        await server.stop(grace=None)


async def expect_error(service: Service, method: str, token: str | None) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await service.call(method, token)
    return info.value


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_hostile_matrix_over_grpc(algo: Algo, case: Case, service: Service) -> None:
    token = case.build(algo)
    if case.error is None:
        reply = await service.call("Echo", token)
        assert reply.value == "hi:ada"
        assert service.calls == 1
        return
    err = await expect_error(service, "Echo", token)
    if case.id == "one_megabyte":
        # grpc refuses metadata over its size limit before kitpy runs: a client-fault code
        assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert service.calls == 0
        return
    assert err.code() is grpc.StatusCode.UNAUTHENTICATED
    assert err.details() == case.error.default_message
    trailing = dict(err.trailing_metadata() or ())
    assert trailing.get("www-authenticate") == 'Bearer error="invalid_token"'
    assert service.calls == 0


async def test_missing_metadata_is_unauthenticated(service: Service) -> None:
    err = await expect_error(service, "Echo", None)
    assert err.code() is grpc.StatusCode.UNAUTHENTICATED
    assert err.details() == "missing bearer token"
    assert dict(err.trailing_metadata() or ()).get("www-authenticate") == "Bearer"


async def test_missing_scope_is_permission_denied(algo: Algo, service: Service) -> None:
    err = await expect_error(service, "Admin", algo.sign(good_claims()))
    assert err.code() is grpc.StatusCode.PERMISSION_DENIED
    admin = algo.sign(good_claims(scope="strings:admin"))
    assert (await service.call("Admin", admin)).value == "hi:ada"


async def test_signer_and_client_hook_round_trip(algo: Algo, service: Service) -> None:
    claims = {"sub": "cli", "aud": AUDIENCE, "iss": ISSUER}
    signer = jwt_signer(algo.private, algorithm=algo.name, kid=KID, claims=claims)

    assert service.channel is not None
    channel = service.channel

    def client(method: str) -> Client[str, str, StringValue, StringValue]:
        return Client(
            channel, SERVICE, method, lambda ctx, s: StringValue(value=s),
            lambda ctx, m: m.value, StringValue, before=[context_to_grpc],
        )  # fmt: skip

    ctx = Context().with_timeout(5)
    assert await signer(client("Echo"))(ctx, "a") == "a:cli"
    assert await signer(client("Echo"))(ctx, "b") == "b:cli"
    with pytest.raises(Unauthenticated) as info:
        await client("Echo")(ctx, "c")
    assert info.value.message == "missing bearer token"
    with pytest.raises(PermissionDenied):
        await signer(client("Admin"))(ctx, "d")


async def test_two_authorization_entries_are_refused_on_a_bare_grpc_server(
    algo: Algo, service: Service
) -> None:
    """grpc.aio's metadata keeps both entries; the hook refuses the call before any verification."""
    assert service.channel is not None
    multi = service.channel.unary_unary(
        f"/{SERVICE}/Echo",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )
    good = f"Bearer {algo.sign(good_claims())}"
    metadata = (("authorization", good), ("authorization", good))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await multi(StringValue(value="hi"), metadata=metadata, timeout=10)
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert info.value.details() == "more than one Authorization header"
    assert service.calls == 0
    assert (await service.call("Echo", algo.sign(good_claims()))).value == "hi:ada"
