"""The JWT signer: client middleware that puts a signed token in the Context.

:func:`jwt_signer` signs a token from static claims (or claims computed from the
Context) and stores it under :data:`~kitpy.auth.TOKEN`, where a client before
hook (``context_to_http`` / ``context_to_grpc``) sends it.  Signing costs tens of
microseconds (HS256) to milliseconds (RS256), so signed tokens are cached by
their claims and reused until ``refresh_margin`` seconds before they expire.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from kitpy.auth.context import TOKEN
from kitpy.context import Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, keep_name

import jwt  # isort: skip  # kitpy.auth.jwt.keys has checked that pyjwt is installed

__all__ = ["jwt_signer"]

Claims = Mapping[str, Any] | Callable[[Context], Mapping[str, Any]]
"""Static claims, or a function computing them from the Context."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _signing_key(key: Any, algorithm: str) -> Any:
    if algorithm.lower() == "none":
        raise ValueError('the "none" algorithm is never used')
    if isinstance(key, jwt.PyJWK):
        key = key.key
    alg = jwt.get_algorithm_by_name(algorithm)  # raises NotImplementedError for unknown names
    try:
        prepared = alg.prepare_key(key)
    except jwt.InvalidKeyError as exc:
        raise ValueError(f"the key cannot sign {algorithm}") from exc
    check = getattr(alg, "check_key_length", None)
    weakness = None if check is None else check(prepared)
    if weakness:
        raise ValueError(weakness)
    try:
        alg.sign(b"probe", prepared)  # a public key passes prepare_key but cannot sign
    except Exception as exc:
        raise ValueError(f"the key cannot sign {algorithm} (is it a public key?)") from exc
    return prepared


def jwt_signer(
    key: Any,
    *,
    algorithm: str,
    kid: str | None = None,
    claims: Claims = _EMPTY,
    lifetime: float | None = 300.0,
    refresh_margin: float = 30.0,
    cache: bool = True,
    cache_size: int = 256,
    clock: Callable[[], float] = time.time,
) -> GenericMiddleware:
    """Client middleware: sign a JWT and put it in the Context under ``TOKEN``.

    ``claims`` is a mapping, or a function ``(ctx) -> mapping`` for per-call
    claims.  Unless the claims set them, ``iat`` is now and ``exp`` is
    ``lifetime`` seconds later (no ``exp`` when ``lifetime`` is None, which a
    :func:`~kitpy.auth.jwt.jwt_parser` refuses unless built with
    ``require_exp=False``).  ``kid``
    goes in the header.  ``key`` is a private key (PEM or cryptography object)
    or an HMAC secret; it is checked against ``algorithm`` once, here.

    With ``cache`` on, a token is reused for identical claims until
    ``refresh_margin`` seconds (at most half its lifetime) before its ``exp``;
    computed claims are compared through their canonical JSON.  ``clock`` is
    wall-clock seconds.

    Example::

        signer = jwt_signer(private_pem, algorithm="ES256", kid="k1",
                            claims={"iss": "cli", "aud": "stringsvc", "sub": "ada"})
        client_endpoint = signer(client_endpoint)
    """
    prepared = _signing_key(key, algorithm)
    headers = None if kid is None else {"kid": kid}
    compute: Callable[[Context], Mapping[str, Any]] | None = None
    static: dict[str, Any] = {}
    if callable(claims):
        compute = claims
    else:
        static = dict(claims)
    static_key = json.dumps(static, sort_keys=True, default=str)
    tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def sign(base: Mapping[str, Any], now: float) -> tuple[str, float]:
        payload = dict(base)
        if "iat" not in payload:
            payload["iat"] = int(now)
        if lifetime is not None and "exp" not in payload:
            payload["exp"] = int(now + lifetime)
        token = jwt.encode(payload, prepared, algorithm=algorithm, headers=headers)
        exp = payload.get("exp")
        if not isinstance(exp, int | float):
            return token, now + 86400.0  # no expiry: reuse for a day at most
        margin = min(refresh_margin, (exp - now) / 2)
        return token, exp - margin

    def token_for(ctx: Context) -> str:
        if compute is None:
            base: Mapping[str, Any] = static
            cache_key = static_key
        else:
            base = compute(ctx)
            if not cache:
                return sign(base, clock())[0]
            cache_key = json.dumps(base, sort_keys=True, default=str)
        now = clock()
        if cache:
            hit = tokens.get(cache_key)
            if hit is not None and now < hit[1]:
                return hit[0]
        token, reuse_until = sign(base, now)
        if cache and now < reuse_until:
            if cache_key not in tokens and len(tokens) >= cache_size:
                tokens.popitem(last=False)
            tokens[cache_key] = (token, reuse_until)
        return token

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        def endpoint(ctx: Context, request: Req) -> Awaitable[Resp]:
            return next(ctx.with_value(TOKEN, token_for(ctx)), request)

        return keep_name(endpoint, next)

    return middleware
