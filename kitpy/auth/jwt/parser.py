"""The JWT parser: server middleware that verifies the Context's bearer token.

:func:`jwt_parser` builds a :class:`JWTParser`, a middleware that reads
:data:`~kitpy.auth.TOKEN` (put there by a transport hook), verifies it with
pyjwt and calls the endpoint with the claims in the Context.  A token that is
missing or fails any check raises a :class:`~kitpy.auth.errors.TokenError`
(UNAUTHENTICATED) and the endpoint is never called.

The same check runs *before the request body is read* when the parser's
:meth:`JWTParser.authenticate` is given to a Server as ``authenticate=``: an
anonymous caller then gets 401 instead of learning the body schema from 400s
and 413s.  Use one or the other, not both (each would verify).

Security decisions, all fixed at build time:

* ``algorithms`` is mandatory and never read from the token; ``none`` is refused,
  and so is any algorithm the key does not fit (no HS256 with an RSA key).
* Any pyjwt failure (``PyJWTError``, which includes ``InvalidKeyError``) and any
  decoding error becomes a ``TokenError`` with a fixed message; nothing from the
  token or the library reaches the caller.
* Tokens longer than ``max_token_length``, not ASCII, or not three segments are
  malformed before any decoding work is done.
* ``exp`` is required (``require_exp=True``): a token without it would be valid
  forever, and is refused with :class:`~kitpy.auth.errors.MissingExpiry`.
* Time claims (``exp``, ``nbf``, ``iat``) are checked against the injectable
  ``clock`` (wall-clock seconds) with ``leeway``, by the same code on the cached
  and the uncached path.  pyjwt checks the signature, ``aud``, ``iss``,
  ``sub``/``jti`` types and ``required_claims``.
* Successful verifications are cached from a token's second use on (see
  :mod:`kitpy.auth.jwt.cache`); a hit costs a dict lookup and a clock read.
* Key sources with ``kid`` s (``KeySet``, ``JWKS``) pick the key from the token
  header; a token's ``alg`` must be allowed *and* fit that key.  A ``StaticKey``
  ignores ``kid``.
"""

from __future__ import annotations

import binascii
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast, overload

from kitpy.auth.context import CLAIMS, TOKEN
from kitpy.auth.errors import (
    AlgorithmNotAllowed,
    InvalidClaims,
    MissingExpiry,
    TokenExpired,
    TokenMalformed,
    TokenMissing,
    TokenNotYetValid,
    UnknownKey,
)
from kitpy.auth.jwt.cache import TokenCache
from kitpy.auth.jwt.keys import KeySource, StaticKey, VerificationKey
from kitpy.auth.jwt.rules import translate, validity_window
from kitpy.context import Context, Key
from kitpy.endpoint import Endpoint, Req, Resp, failed, keep_name

import jwt  # isort: skip  # kitpy.auth.jwt.keys has checked that pyjwt is installed

__all__ = ["JWTParser", "jwt_parser"]

C = TypeVar("C")

_DECODE_ERRORS = (ValueError, TypeError, binascii.Error, RecursionError, OverflowError)


class _KeyMiss(Exception):
    """Internal: the key source had no key for the token; refresh and retry."""


class JWTParser(Generic[C]):
    """A middleware that verifies the Context's bearer token; see :func:`jwt_parser`.

    ``claims_key`` is the Context key the claims are stored under, ``cache`` the
    verified-token cache.  :meth:`verify` checks a token without an endpoint;
    :meth:`authenticate` is the Server option (``authenticate=parser.authenticate``).
    """

    def __init__(
        self,
        source: KeySource,
        *,
        algorithms: Iterable[str],
        audience: str | Iterable[str] | None,
        issuer: str | Iterable[str] | None,
        leeway: float | timedelta,
        required_claims: Iterable[str],
        require_exp: bool,
        claims_type: Callable[[dict[str, Any]], C],
        claims_key: Key[C],
        clock: Callable[[], float],
        cache_size: int,
        cache_max_ttl: float,
        max_token_length: int,
    ) -> None:
        if isinstance(algorithms, str):
            raise TypeError('algorithms must be a list of names, e.g. ["RS256"], not a string')
        allowed = tuple(dict.fromkeys(algorithms))
        if not allowed:
            raise ValueError("algorithms must name at least one algorithm")
        if any(a.lower() == "none" for a in allowed):
            raise ValueError('the "none" algorithm is never accepted')
        for name in allowed:
            try:
                jwt.get_algorithm_by_name(name)
            except NotImplementedError:
                raise ValueError(f"unknown JWT algorithm {name!r}") from None
        self.algorithms = allowed
        self.source = source
        self._static: VerificationKey | None = None
        if isinstance(source, StaticKey):
            unfit = [a for a in allowed if a not in source.key.algorithms]
            if unfit:
                raise ValueError(
                    f"the key cannot verify {', '.join(unfit)}; it fits "
                    f"{', '.join(sorted(source.key.algorithms))}"
                )
            self._static = source.key
        self._single = {a: [a] for a in allowed}
        self._audience = audience if audience is None or isinstance(audience, str) else [*audience]
        self._issuer = issuer if issuer is None or isinstance(issuer, str) else frozenset(issuer)
        self.leeway = leeway.total_seconds() if isinstance(leeway, timedelta) else float(leeway)
        self.require_exp = require_exp
        # One pyjwt decoder with the options merged once (passing options per call costs
        # ~7% of an HS256 decode).  Time claims are checked by validity_window on our clock.
        options: Any = {
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "require": list(required_claims),
        }
        self._decode = jwt.PyJWT(options).decode
        self._convert = claims_type
        self._copy = claims_type is dict
        # dict claims: each caller gets a copy of the cached ones (C is dict then)
        self._copy_claims = cast("Callable[[C], C]", dict.copy)
        self.claims_key = claims_key
        self._clock = clock
        self.cache: TokenCache[C] = TokenCache(
            clock=clock, max_size=cache_size, max_ttl=cache_max_ttl
        )
        self.max_token_length = max_token_length
        self._verify_sync = self._build_verifier()

    # -- verification -------------------------------------------------------------

    def _resolve_key(self, token: str) -> tuple[Any, list[str]]:
        """For a key source with ``kid`` s: the key and the one algorithm for ``token``."""
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        single = self._single.get(alg) if isinstance(alg, str) else None
        if single is None:
            raise AlgorithmNotAllowed()
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenMalformed()
        vk = self.source.key_for(kid)
        if vk is None:
            raise _KeyMiss()
        if alg not in vk.algorithms:
            raise AlgorithmNotAllowed()
        return vk.key, single

    def _build_verifier(self) -> Callable[[str], C]:
        """The uncached verification as one closure (locals are cheaper than attributes)."""
        max_length = self.max_token_length
        static = self._static
        static_key = None if static is None else static.key
        static_algorithms = list(self.algorithms)
        resolve_key = self._resolve_key
        decode = self._decode
        audience = self._audience
        issuer = self._issuer
        leeway = self.leeway
        require_exp = self.require_exp
        never = math.inf  # validity_window's expires_at for a token without exp
        clock = self._clock
        convert = self._convert
        copy = self._copy
        admit = self.cache.admit
        put = self.cache.put

        def verify(token: str) -> C:
            """Verify without the cache lookup; store a success.  Raises _KeyMiss."""
            if len(token) > max_length or not token.isascii() or token.count(".") != 2:
                raise TokenMalformed()
            try:
                if static is None:
                    key, algorithms = resolve_key(token)
                else:
                    key, algorithms = static_key, static_algorithms
                payload = decode(
                    token, key, algorithms=algorithms, audience=audience, issuer=issuer
                )
            except jwt.PyJWTError as exc:
                raise translate(exc) from exc
            except _DECODE_ERRORS as exc:
                raise TokenMalformed() from exc
            not_before, expires_at = validity_window(payload, leeway)
            if expires_at == never and require_exp:
                raise MissingExpiry()
            now = clock()
            if now < not_before:
                raise TokenNotYetValid()
            if now >= expires_at:
                raise TokenExpired()
            if copy:  # dict claims: the caller gets the payload, the cache a copy (if it keeps one)
                if admit(token):
                    put(token, cast(C, dict(payload)), not_before, expires_at, now)
                return cast(C, payload)
            try:
                claims = convert(payload)
            except Exception as exc:
                raise InvalidClaims() from exc
            if admit(token):
                put(token, claims, not_before, expires_at, now)
            return claims

        return verify

    async def _verify_with_refresh(self, ctx: Context, token: str) -> C:
        await self.source.refresh(ctx)
        try:
            return self._verify_sync(token)
        except _KeyMiss:
            raise UnknownKey() from None

    def cached(self, token: str) -> C | None:
        """The claims of ``token`` if the verified-token cache holds it (a copy), else None."""
        claims = self.cache.lookup(token)
        if claims is not None and self._copy:
            return self._copy_claims(claims)
        return claims

    async def verify(self, ctx: Context, token: str) -> C:
        """Verify ``token`` (cache first) and return its claims, or raise a ``TokenError``."""
        claims = self.cached(token)
        if claims is not None:
            return claims
        return await self._verify_uncached(ctx, token)

    async def _verify_uncached(self, ctx: Context, token: str) -> C:
        try:
            return self._verify_sync(token)
        except _KeyMiss:
            return await self._verify_with_refresh(ctx, token)

    async def authenticate(self, ctx: Context) -> Context:
        """Verify the Context's :data:`~kitpy.auth.TOKEN`; return the Context with the claims.

        The whole check of the middleware, as a Server option: the Server runs
        it after its ``before`` funcs and before it reads the request body, so
        an anonymous request is 401 / UNAUTHENTICATED whatever its body.
        Raises :class:`~kitpy.auth.errors.TokenMissing` without a token, else
        what :meth:`verify` raises.

        Example::

            parser = jwt_parser(secret, algorithms=["HS256"], audience="orders")
            Server(endpoint, decode_json(Order), encode_json,
                   before=[http_to_context], authenticate=parser.authenticate)
        """
        token = ctx.get(TOKEN)
        if token is None:
            raise TokenMissing()
        return ctx.with_value(self.claims_key, await self.verify(ctx, token))

    # -- middleware ---------------------------------------------------------------

    def __call__(self, next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        cached, verify, claims_key = self.cached, self._verify_uncached, self.claims_key

        async def verified(ctx: Context, token: str, request: Req) -> Resp:
            claims = await verify(ctx, token)
            return await next(ctx.with_value(claims_key, claims), request)

        # A plain def (see kitpy.endpoint.failed): a token verified lately goes straight on to
        # next's awaitable, with no coroutine of this layer's; errors still come out of the await.
        def endpoint(ctx: Context, request: Req) -> Awaitable[Resp]:
            token = ctx.get(TOKEN)
            if token is None:
                return failed(TokenMissing())
            claims = cached(token)
            if claims is None:
                return verified(ctx, token, request)
            return next(ctx.with_value(claims_key, claims), request)

        return keep_name(endpoint, next)


@overload
def jwt_parser(
    key_source: Any,
    *,
    algorithms: Iterable[str],
    audience: str | Iterable[str] | None = None,
    issuer: str | Iterable[str] | None = None,
    leeway: float | timedelta = 0,
    required_claims: Iterable[str] = (),
    require_exp: bool = True,
    claims_key: Key[dict[str, Any]] = CLAIMS,
    clock: Callable[[], float] = time.time,
    cache_size: int = 4096,
    cache_max_ttl: float = 300.0,
    max_token_length: int = 8192,
) -> JWTParser[dict[str, Any]]: ...


@overload
def jwt_parser(
    key_source: Any,
    *,
    algorithms: Iterable[str],
    audience: str | Iterable[str] | None = None,
    issuer: str | Iterable[str] | None = None,
    leeway: float | timedelta = 0,
    required_claims: Iterable[str] = (),
    require_exp: bool = True,
    claims_type: Callable[[dict[str, Any]], C],
    claims_key: Key[C] | None = None,
    clock: Callable[[], float] = time.time,
    cache_size: int = 4096,
    cache_max_ttl: float = 300.0,
    max_token_length: int = 8192,
) -> JWTParser[C]: ...


def jwt_parser(
    key_source: Any,
    *,
    algorithms: Iterable[str],
    audience: str | Iterable[str] | None = None,
    issuer: str | Iterable[str] | None = None,
    leeway: float | timedelta = 0,
    required_claims: Iterable[str] = (),
    require_exp: bool = True,
    claims_type: Callable[[dict[str, Any]], Any] = dict,
    claims_key: Key[Any] | None = None,
    clock: Callable[[], float] = time.time,
    cache_size: int = 4096,
    cache_max_ttl: float = 300.0,
    max_token_length: int = 8192,
) -> JWTParser[Any]:
    """Server middleware: verify the Context's bearer token and put its claims in the Context.

    ``key_source`` is a :class:`~kitpy.auth.jwt.keys.KeySource` (``StaticKey``,
    ``KeySet``, ``JWKS``) or key material for a ``StaticKey`` (an HMAC secret,
    PEM text, a cryptography key).  ``algorithms`` is the allow-list, e.g.
    ``["ES256"]``; every algorithm must fit a static key.  ``audience`` and
    ``issuer`` are required to match when given (a token with an ``aud`` is
    refused when no ``audience`` is configured, as pyjwt does).  ``leeway`` is
    seconds of clock skew tolerated on ``exp``/``nbf``/``iat``.
    ``required_claims`` must be present.  ``exp`` is required too unless
    ``require_exp=False`` (a token without it never expires): one without it
    is refused with :class:`~kitpy.auth.errors.MissingExpiry`, "token has no
    exp claim (an expiry is required)".

    The claims dict is passed to ``claims_type`` (a dataclass factory, a
    pydantic ``model_validate``, ...); an exception there is ``invalid_claims``.
    The result goes into the Context under ``claims_key`` -- by default
    :data:`~kitpy.auth.CLAIMS` for dict claims, a new key (``parser.claims_key``)
    otherwise.  Converted claims are cached and shared by every request carrying
    the same token, so treat them as read-only; the default dicts are copied per
    request.  ``cache_size=0`` disables the cache; ``cache_max_ttl`` caps how
    long one verification is reused (a token is cached from its second use on).
    ``max_token_length`` bounds the work an attacker can ask for.

    The parser is a middleware, and ``parser.authenticate`` is the same check
    as a Server option that runs before the request body is read (see
    :meth:`JWTParser.authenticate`); use one of the two.

    Example::

        parser = jwt_parser(public_pem, algorithms=["RS256"], audience="stringsvc",
                            issuer="https://auth.example")
        endpoint = parser(endpoint)          # reads TOKEN, sets CLAIMS
    """
    source = key_source if isinstance(key_source, KeySource) else StaticKey(key_source)
    if claims_key is None:
        claims_key = CLAIMS if claims_type is dict else Key("auth.claims")
    return JWTParser(
        source,
        algorithms=algorithms,
        audience=audience,
        issuer=issuer,
        leeway=leeway,
        required_claims=required_claims,
        require_exp=require_exp,
        claims_type=claims_type,
        claims_key=claims_key,
        clock=clock,
        cache_size=cache_size,
        cache_max_ttl=cache_max_ttl,
        max_token_length=max_token_length,
    )
