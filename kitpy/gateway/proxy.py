"""HTTP -> HTTP reverse proxying: an aiohttp handler that forwards each request to an upstream.

``reverse_proxy(pool, ...)`` is an aiohttp handler.  Per request it:

1. keeps the caller's ``X-Request-Id`` (when usable) or makes one, and sends
   it back on every answer;
2. takes the deadline from the caller's ``X-Timeout-Ms``, capped at the
   route's ``timeout`` (which is also the default): a caller may ask for less
   time, never for more;
3. refuses what must not be forwarded: a declared body over ``max_body_size``
   (413, before any instance is bothered), a path with ``.`` or ``..``
   segments (400: the instance could resolve it to a path this route does not
   cover), a path outside ``strip_prefix`` (404), ``CONNECT`` (405);
4. forwards it to an instance the pool's P2C balancer picks, streaming the
   body up as it arrives (still capped at ``max_body_size``: 413 past it) and
   the answer down as it arrives, whatever its size, headers filtered by
   :mod:`kitpy.gateway.headers`;
5. tries another instance when that is safe (see below), all within the deadline.

Retries.  A request that never reached an instance (its breaker was open, or
no connection could be made) goes to another one whatever its method.  One
that did is sent again only when its method is idempotent (GET, HEAD,
OPTIONS, PUT, DELETE), no byte of its body was consumed (or it has none), and
the instance reset the connection or answered 502 or 503; at most
``retries`` times, within the pool's retry budget and the deadline, and each
time to an instance this request has not tried yet.  No backoff: the next
attempt goes elsewhere.

Errors are kitpy JSON bodies (``{"error": {"code", "message"}}``) with
``X-Request-Id``; messages name the service, never an instance's address:

=====================================================  ====  ==================
what happened                                          HTTP  code
=====================================================  ====  ==================
no instance; every breaker open                        503   UNAVAILABLE
connection refused, reset or closed; a non-HTTP reply  502   UNAVAILABLE
the deadline passed before the answer began            504   DEADLINE_EXCEEDED
the deadline passed while the body was still arriving  408   DEADLINE_EXCEEDED
body over ``max_body_size``                            413   INVALID_ARGUMENT
malformed ``X-Timeout-Ms``; dot segments               400   INVALID_ARGUMENT
=====================================================  ====  ==================

An instance's own answers, 4xx and 5xx included, are relayed as they are.
Once an answer has begun, a failure (the instance cut it short, the deadline
passed) can only cut it short too: the caller's connection is closed, so the
caller sees an incomplete body rather than a complete-looking wrong one.

Example::

    session = upstream_session()
    users = UpstreamPool(FixedInstancer(["10.0.0.1:8080", "10.0.0.2:8080"]), session,
                         name="users")
    users.start()
    app.router.add_route("*", "/users/{tail:.*}", reverse_proxy(users, timeout=5.0))
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence

from aiohttp import web

from kitpy.context import REQUEST_ID, Authenticate, Context
from kitpy.errors import (
    CircuitOpen,
    DeadlineExceeded,
    InvalidArgument,
    KitError,
    NotFound,
    Unavailable,
)
from kitpy.gateway.exchange import BadGateway, Exchange, RequestBody
from kitpy.gateway.headers import request_headers
from kitpy.gateway.upstream import UpstreamPool
from kitpy.transport.http.codec import DEFAULT_MAX_BODY_SIZE
from kitpy.transport.http.errors import MethodNotAllowed, PayloadTooLarge, default_error_encoder
from kitpy.transport.http.keys import (
    REQUEST_ID_HEADER,
    TIMEOUT_HEADER,
    incoming_request_id,
    parse_timeout,
)
from kitpy.transport.http.routes import Handler
from kitpy.transport.http.types import ClientBefore, ServerBefore, ServerFinalizer

__all__ = ["CLIENT_CLOSED_REQUEST", "DEFAULT_RETRIES", "DEFAULT_TIMEOUT", "reverse_proxy"]

CLIENT_CLOSED_REQUEST = 499
"""The status a finalizer sees when the caller went away before an answer began (as nginx logs)."""

DEFAULT_TIMEOUT = 30.0
"""Seconds a proxied request may take, answer included, unless its route says otherwise."""

DEFAULT_RETRIES = 2
"""Attempts after the first that a request may make, on other instances."""

_log = logging.getLogger("kitpy.gateway")


def reverse_proxy(
    pool: UpstreamPool,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    strip_prefix: str = "",
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    before: Sequence[ServerBefore] = (),
    authenticate: Authenticate | None = None,
    client_before: Sequence[ClientBefore] = (),
    finalizer: Sequence[ServerFinalizer] = (),
) -> Handler:
    """An aiohttp handler that forwards each request to an instance of ``pool``.

    ``timeout`` (seconds) bounds each request, answer included; a caller's
    ``X-Timeout-Ms`` may shorten it.  ``retries`` is how many other instances
    a request may try after the first (see the module docstring for when).
    ``strip_prefix`` (e.g. ``"/users"``) is taken off the path before it goes
    upstream, so ``/users/7?x=1`` is asked for as ``/7?x=1``.
    ``max_body_size`` caps the request body in bytes (default 1 MiB, as
    aiohttp's and kitpy's Server's); the answer is never capped: it streams.

    Hooks, named and run as a kitpy HTTP Server's: ``before`` funcs
    ``(ctx, request) -> ctx`` first; then ``authenticate`` ``(ctx) ->
    ctx``, awaited before the body is read (its ``KitError`` is the answer,
    e.g. 401 or 429); ``client_before`` funcs ``(ctx, headers) -> ctx`` on
    the headers going upstream (trace context, forwarded claims); and
    ``finalizer`` funcs ``(ctx, status, size)`` once the answer is done, with
    its status and body size in bytes (status 499 when the caller went away
    before an answer began).

    Example::

        app.router.add_route("*", "/users/{tail:.*}",
                             reverse_proxy(users, strip_prefix="/users", timeout=5.0))
    """
    if timeout <= 0:
        raise ValueError("timeout must be > 0 seconds")
    if retries < 0:
        raise ValueError("retries must be >= 0")
    if max_body_size < 0:
        raise ValueError("max_body_size must be >= 0 bytes")
    prefix = strip_prefix.rstrip("/")
    if prefix and not prefix.startswith("/"):
        raise ValueError(f"strip_prefix must start with '/', got {strip_prefix!r}")
    id_prefix = os.urandom(6).hex() + "-"
    ids = itertools.count(1)
    root = Context()  # immutable: each request's Context is a child of this one

    async def proxy(request: web.Request) -> web.StreamResponse:
        request_id = incoming_request_id(request.headers) or f"{id_prefix}{next(ids)}"
        ctx = root.with_value(REQUEST_ID, request_id)
        response: web.StreamResponse | None = None
        exchange: Exchange | None = None
        try:
            for hook in before:
                ctx = hook(ctx, request)
            ctx = ctx.with_timeout(_budget(request, timeout))
            if authenticate is not None:
                ctx = await authenticate(ctx)
            exchange = _exchange(request, pool, request_id, prefix, retries, max_body_size)
            for outgoing in client_before:
                ctx = outgoing(ctx, exchange.headers)
            response = await _forward(pool, ctx, exchange)
        except KitError as err:
            response = _error_response(ctx, err, request_id)
        except Exception as exc:  # a bug: logged here, a generic 500 to the caller
            _log.exception("reverse proxy to %r failed", pool.name)
            response = _error_response(ctx, exc, request_id)
        finally:
            if finalizer:
                _finalize(finalizer, ctx, response, exchange)
        return response

    return proxy


def _finalize(
    finalizers: Sequence[ServerFinalizer],
    ctx: Context,
    response: web.StreamResponse | None,
    exchange: Exchange | None,
) -> None:
    if response is None:  # cancelled: the caller went away before an answer began
        status, size = CLIENT_CLOSED_REQUEST, 0
    elif exchange is not None and response is exchange.response:  # relayed: its body bytes
        status, size = response.status, exchange.sent
    else:  # an answer of the gateway's own, yet to be sent
        status, size = response.status, response.content_length or 0
    for finalizer in finalizers:
        finalizer(ctx, status, size)


def _budget(request: web.Request, timeout: float) -> float:
    """Seconds this request has: the caller's ``X-Timeout-Ms``, at most ``timeout``."""
    header = request.headers.get(TIMEOUT_HEADER)
    if header is None:
        return timeout
    seconds = parse_timeout(header)  # InvalidArgument (400) when malformed
    if seconds <= 0:
        raise DeadlineExceeded("deadline exceeded before the request was forwarded")
    return min(seconds, timeout)


def _target(request: web.Request, prefix: str) -> str:
    """The path and query to ask an instance for, still percent-encoded as the caller sent them."""
    decoded = request.path
    # most paths have no dot at all: the split and its generator (~4 k instructions) only then
    if "." in decoded and any(segment in (".", "..") for segment in decoded.split("/")):
        raise InvalidArgument("the path may not contain '.' or '..' segments")
    url = request.rel_url  # origin-form even when the caller sent an absolute URL
    path = url.raw_path
    if prefix:
        if path != prefix and not path.startswith(prefix + "/"):
            raise NotFound(f"{request.path[:200]!r} is not under {prefix!r}")
        path = path[len(prefix) :] or "/"
    query = url.raw_query_string
    return f"{path}?{query}" if query else path


def _exchange(
    request: web.Request,
    pool: UpstreamPool,
    request_id: str,
    prefix: str,
    retries: int,
    max_body_size: int,
) -> Exchange:
    if request.method == "CONNECT":
        raise MethodNotAllowed("CONNECT is not proxied")
    target = _target(request, prefix)
    length = request.content_length
    if length is not None and length > max_body_size:
        raise PayloadTooLarge(f"request body is larger than the limit of {max_body_size} bytes")
    body = RequestBody(request, limit=max_body_size) if request.body_exists else None
    return Exchange(
        request,
        pool=pool,
        target=target,
        headers=request_headers(request, request_id=request_id),
        request_id=request_id,
        body=body,
        retries=retries,
    )


async def _forward(pool: UpstreamPool, ctx: Context, exchange: Exchange) -> web.StreamResponse:
    """Try instances until one answers or no further attempt is allowed (module docstring)."""
    budget = pool.budget
    budget.deposit()
    tried = exchange.tried
    failure: KitError | None = None  # the last attempt's error
    refusal: CircuitOpen | None = None  # the last open breaker's
    endpoint = pool.pick_other(tried)
    while endpoint is not None:
        tried.add(endpoint)
        try:
            return await endpoint(ctx, exchange)
        except CircuitOpen as exc:  # nothing was sent: free to go elsewhere, at no cost
            refusal = exc
            endpoint = pool.pick_other(tried)
            continue
        except Exception as exc:
            if exchange.response is not None:  # the answer had begun: all we can do is cut it
                _cut_short(exchange, exc)
                return exchange.response
            remaining = ctx.time_remaining()
            if not isinstance(exc, KitError) or not exchange.may_retry(exc):
                raise
            if remaining is None or remaining <= 0:
                raise
            failure = exc
        endpoint = pool.pick_other(tried)
        if endpoint is None or not budget.try_withdraw():
            break
        exchange.retries_left -= 1
    raise _exhausted(pool, failure, refusal)


def _cut_short(exchange: Exchange, exc: Exception) -> None:
    """Close the caller's connection mid-answer, so that the body visibly ends early."""
    if not isinstance(exc, KitError):
        _log.error("reverse proxy failed during an answer", exc_info=exc)
    transport = exchange.request.transport
    if transport is not None:
        transport.abort()


def _exhausted(
    pool: UpstreamPool, failure: KitError | None, refusal: CircuitOpen | None
) -> KitError:
    """The error for a request with no instance left to try."""
    if failure is not None:
        return failure
    name = pool.name
    if refusal is not None:  # its message names an instance: the caller is outside
        return Unavailable(
            f"no instance of {name!r} is available: their circuit breakers are open",
            headers=refusal.headers,
        )
    return Unavailable(f"no instance of {name!r} is available")


def _error_response(ctx: Context, exc: BaseException, request_id: str) -> web.Response:
    response = default_error_encoder(ctx, exc)
    if isinstance(exc, BadGateway):
        response.set_status(BadGateway.status)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response
