"""Claims the gateway verified, forwarded to upstreams in a form only the gateway can make.

On a route with ``auth = "jwt"`` the gateway verifies the caller's bearer
token.  An upstream must be able to trust *who* the caller is without
verifying the caller's token again and without trusting a header anyone could
send.  So the gateway re-issues the verified claims as a short-lived JWT of
its own, signed with a secret it shares with the upstreams (HS256), with
``iss`` = :data:`GATEWAY_ISSUER` and ``aud`` = the upstream's name, and sends
it in :data:`~kitpy.gateway.headers.CLAIMS_HEADER` (``X-Gateway-Claims``; gRPC
metadata ``x-gateway-claims``).  The gateway drops any ``X-Gateway-Claims`` a
caller sends, and an upstream accepts the header only when the signature,
issuer, audience and expiry check out -- a caller cannot forge it, and one
captured for another upstream or more than ``lifetime`` seconds ago is refused.

Gateway side: :class:`ClaimsSigner`.  Upstream side: put the header's token in
the Context with :func:`http_claims_to_context` (an HTTP Server ``before``
func) or :func:`grpc_claims_to_context` (a gRPC Server ``before`` func), and
verify it with :func:`claims_parser` -- a :class:`~kitpy.auth.JWTParser`, so
the claims land in the Context under :data:`~kitpy.auth.CLAIMS` as with any
JWT::

    parser = claims_parser(secret, audience="stringsvc")
    Server(endpoint, decode, encode, before=[http_claims_to_context],
           authenticate=parser.authenticate)

Needs ``kitpy[jwt]`` (pyjwt).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import jwt

from kitpy.auth.context import TOKEN
from kitpy.auth.jwt import JWTParser, jwt_parser
from kitpy.context import Context
from kitpy.gateway.headers import CLAIMS_HEADER

__all__ = [
    "CLAIMS_METADATA",
    "GATEWAY_ISSUER",
    "MIN_SECRET_BYTES",
    "ClaimsSigner",
    "claims_parser",
    "grpc_claims_to_context",
    "http_claims_to_context",
]

GATEWAY_ISSUER = "kitpy-gateway"
"""The ``iss`` of the tokens the gateway signs; :func:`claims_parser` requires it."""
CLAIMS_METADATA = CLAIMS_HEADER.lower()
"""The gRPC metadata key carrying the gateway's token (``x-gateway-claims``)."""
MIN_SECRET_BYTES = 32
"""The shortest secret accepted: HS256 with less is guessable offline (RFC 7518, 3.2)."""

# claims the gateway sets itself: never copied from the caller's token
_OWN = frozenset({"iss", "aud", "iat", "nbf", "exp", "jti"})


def _secret_bytes(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the claims secret must be at least {MIN_SECRET_BYTES} bytes, got {len(key)}"
        )
    return key


class ClaimsSigner:
    """Signs verified claims into the gateway's short-lived token for one upstream.

    ``secret`` (at least 32 bytes) is shared with the upstreams; ``lifetime``
    is each token's validity in seconds (default 60, so a captured token is
    soon useless).  Tokens are cached per (claims, audience) and reused until
    a quarter of their lifetime is left, so a busy caller costs one signature
    per ~45 s, not one per request.  ``clock`` is wall-clock seconds.

    >>> signer = ClaimsSigner("s" * 32, clock=lambda: 1_000_000.0)
    >>> token = signer.sign({"sub": "ada", "exp": 1}, audience="stringsvc")
    >>> claims = jwt.decode(token, "s" * 32, algorithms=["HS256"], audience="stringsvc",
    ...                     options={"verify_exp": False})
    >>> claims["sub"], claims["iss"], claims["exp"] - claims["iat"]
    ('ada', 'kitpy-gateway', 60)
    """

    __slots__ = ("_cache", "_clock", "_key", "_max_cached", "lifetime")

    def __init__(
        self,
        secret: str | bytes,
        *,
        lifetime: float = 60.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not lifetime > 0:
            raise ValueError("lifetime must be > 0 seconds")
        self._key = _secret_bytes(secret)
        self.lifetime = lifetime
        self._max_cached = max_cached
        self._clock = clock
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def sign(self, claims: Mapping[str, Any], *, audience: str) -> str:
        """The token carrying ``claims`` (less their registered time/issuer fields) for
        ``audience``."""
        carried = {k: v for k, v in claims.items() if k not in _OWN}
        cache_key = json.dumps([audience, carried], sort_keys=True, default=str)
        now = self._clock()
        cached = self._cache.get(cache_key)
        if cached is not None and cached[1] > now:
            self._cache.move_to_end(cache_key)
            return cached[0]
        issued = int(now)
        expires = issued + max(1, round(self.lifetime))
        payload = {**carried, "iss": GATEWAY_ISSUER, "aud": audience, "iat": issued}
        payload["exp"] = expires
        token = jwt.encode(payload, self._key, algorithm="HS256")
        self._cache[cache_key] = (token, now + 0.75 * (expires - now))
        if len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return token

    def __repr__(self) -> str:
        return f"ClaimsSigner(lifetime={self.lifetime:g}s)"  # never the secret


class _HasHeaders(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...


def http_claims_to_context(ctx: Context, request: _HasHeaders) -> Context:
    """Upstream HTTP Server ``before`` func: the gateway's token from ``X-Gateway-Claims``
    becomes the Context's :data:`~kitpy.auth.TOKEN` (replacing a bearer token), for
    :func:`claims_parser` to verify; without the header the Context is unchanged, so
    the parser answers 401."""
    token = request.headers.get(CLAIMS_HEADER)
    return ctx if not token else ctx.with_value(TOKEN, token)


def grpc_claims_to_context(ctx: Context, metadata: Mapping[str, str | bytes]) -> Context:
    """Upstream gRPC Server ``before`` func: :func:`http_claims_to_context` for the
    ``x-gateway-claims`` metadata entry."""
    token = metadata.get(CLAIMS_METADATA)
    return ctx if not isinstance(token, str) or not token else ctx.with_value(TOKEN, token)


def claims_parser(
    secret: str | bytes, *, audience: str, issuer: str = GATEWAY_ISSUER
) -> JWTParser[Any]:
    """Upstream side: a :class:`~kitpy.auth.JWTParser` that accepts only the gateway's tokens
    for ``audience`` (the upstream's name in the gateway's route table), signed with
    ``secret``; use its ``authenticate`` as the Server's ``authenticate`` option.

    Example::

        parser = claims_parser(secret, audience="stringsvc")
        Server(endpoint, decode, encode, before=[http_claims_to_context],
               authenticate=parser.authenticate)
    """
    return jwt_parser(_secret_bytes(secret), algorithms=["HS256"], audience=audience, issuer=issuer)
