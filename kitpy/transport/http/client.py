"""The HTTP client side: a remote method as an endpoint.

A :class:`Client` *is* an :class:`~kitpy.endpoint.Endpoint`, so client-side
middleware (JWT signer, breaker, limiter, retry, tracing) stacks on it like on
any other endpoint.  Per call: run the ``before`` funcs on the outgoing
headers, encode the request, send the Context's remaining time in
``X-Timeout-Ms`` and use it as the request timeout (an already-expired Context
is not sent at all), run the ``after`` funcs on the response, then either
decode a 2xx response or raise the ``KitError`` the server sent.  The
``finalizer`` funcs run last with the error that ended the call, if any.

Transport failures become kitpy errors: a refused or dropped connection is
``Unavailable``, running out of time is ``DeadlineExceeded``, so retry and
breaker middleware can tell them apart from the server's answers.

The upstream is not trusted:

* a success body is read up to ``max_response_size`` (default 4 MiB,
  :data:`~kitpy.transport.http.DEFAULT_MAX_RESPONSE_SIZE`): a declared length
  over it fails before the decoder runs, and kitpy's decoders read through
  :func:`~kitpy.transport.http.read_body`, which stops a longer body as it
  arrives.  Over the limit: ``Unavailable("upstream response over 4 MiB
  (max_response_size)")``, the connection closed, the rest never read;
* an error body is read up to 64 KiB
  (:data:`~kitpy.transport.http.MAX_ERROR_BODY_SIZE`); a longer one is left
  unread and the error mapped from the status alone;
* the default error decoder believes the status first, relays messages capped
  and on one line, and never quotes an HTML page
  (:func:`~kitpy.transport.http.decode_error`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from kitpy.context import Context
from kitpy.errors import DeadlineExceeded, KitError, Unavailable, Unknown
from kitpy.transport.http.codec import DEFAULT_MAX_RESPONSE_SIZE, MAX_RESPONSE_SIZE, read_body
from kitpy.transport.http.errors import MAX_ERROR_BODY_SIZE, decode_error
from kitpy.transport.http.keys import TIMEOUT_HEADER, format_timeout
from kitpy.transport.http.types import (
    ClientAfter,
    ClientBefore,
    ClientFinalizer,
    DecodeResponse,
    EncodeRequest,
    ErrorDecoder,
    OutgoingRequest,
)
from kitpy.transport.relay import response_too_large

__all__ = ["Client"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

_INF = float("inf")


class Client(Generic[Req, Resp]):
    """An endpoint that calls ``method url`` over HTTP with the given session.

    Example::

        async with aiohttp.ClientSession() as session:
            uppercase = Client(
                session, "POST", "http://127.0.0.1:8080/uppercase",
                encode_json_request, decode_json_response(UppercaseResponse),
            )
            await uppercase(Context().with_timeout(0.5), UppercaseRequest(s="hi"))

    The session is yours: the Client never creates or closes one.
    ``max_response_size`` bounds the response body it reads (see the module
    docstring); raise it for an upstream that legitimately answers more::

        Client(session, "GET", url, encode, decode_report, max_response_size=32 * 1024 * 1024)
    """

    __slots__ = (
        "_after",
        "_before",
        "_decode",
        "_decode_error",
        "_encode",
        "_finalizer",
        "_max_response_size",
        "_method",
        "_session",
        "_url",
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str | URL,
        encode_request: EncodeRequest[Req],
        decode_response: DecodeResponse[Resp],
        *,
        before: Sequence[ClientBefore] = (),
        after: Sequence[ClientAfter] = (),
        finalizer: Sequence[ClientFinalizer] = (),
        error_decoder: ErrorDecoder = decode_error,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        if max_response_size < 0:
            raise ValueError(f"max_response_size must be >= 0, got {max_response_size}")
        self._session = session
        self._method = method.upper()
        self._url = URL(url)
        self._encode = encode_request
        self._decode = decode_response
        self._before = tuple(before)
        self._after = tuple(after)
        self._finalizer = tuple(finalizer)
        self._decode_error = error_decoder
        self._max_response_size = max_response_size

    async def __call__(self, ctx: Context, request: Req) -> Resp:
        """Send ``request`` and return the decoded response (or raise a ``KitError``)."""
        error: BaseException | None = None
        try:
            out = OutgoingRequest(self._method, self._url, CIMultiDict())
            for before in self._before:
                ctx = before(ctx, out.headers)
            self._encode(ctx, out, request)
            options: dict[str, Any] = {}
            remaining = ctx.time_remaining()
            if remaining is not None:
                if remaining <= 0:
                    raise DeadlineExceeded("deadline exceeded before the request was sent")
                out.headers[TIMEOUT_HEADER] = format_timeout(remaining)
                if remaining < _INF:  # aiohttp cannot schedule an infinite timeout
                    options["timeout"] = aiohttp.ClientTimeout(total=remaining)
            try:
                async with self._session.request(
                    out.method,
                    out.url,
                    data=out.body,
                    headers=out.headers,
                    allow_redirects=False,  # an upstream does not get to send us elsewhere
                    **options,
                ) as response:
                    for after in self._after:
                        ctx = after(ctx, response)
                    status = response.status
                    if not 200 <= status < 300:
                        try:
                            body = await read_body(ctx, response, limit=MAX_ERROR_BODY_SIZE)
                        except Unavailable:  # too long to be an error body: go by the status
                            body = b""
                        raise self._decode_error(status, body, response.reason)
                    limit = self._max_response_size
                    length = response.content_length
                    if length is not None and length > limit:  # whatever the decoder
                        response.close()
                        raise response_too_large(limit, option="max_response_size")
                    if ctx.get(MAX_RESPONSE_SIZE, DEFAULT_MAX_RESPONSE_SIZE) != limit:
                        ctx = ctx.with_value(MAX_RESPONSE_SIZE, limit)  # where read_body looks
                    return await self._decode(ctx, response)
            except KitError:
                raise
            except TimeoutError as exc:
                budget = "the session timeout" if remaining is None else f"{remaining:.3f}s"
                raise DeadlineExceeded(f"no response within {budget}") from exc
            except aiohttp.ClientPayloadError as exc:
                raise Unavailable("the response was cut short") from exc
            except aiohttp.ClientConnectionError as exc:
                raise Unavailable(f"upstream unavailable ({type(exc).__name__})") from exc
            except aiohttp.ClientError as exc:
                raise Unknown(f"HTTP client error ({type(exc).__name__})") from exc
        except BaseException as exc:
            error = exc
            raise
        finally:
            for finalize in self._finalizer:
                finalize(ctx, error)
