"""One request on its way through the gateway: what each attempt sends, and how far it got.

The reverse proxy builds an :class:`Exchange` per request and hands it to the
instance endpoints of an :class:`~kitpy.gateway.UpstreamPool`, one attempt
after another.  It carries what every attempt sends (method, target, headers,
the body as a one-shot stream) and what decides whether another attempt is
allowed (:meth:`Exchange.may_retry`): whether the body has been consumed,
whether the answer to the caller has begun, the retries left and the budget.

:class:`RequestBody` streams the caller's body to the upstream without
holding it: at most once (it cannot be replayed), and never more than its
limit (:class:`~kitpy.transport.http.PayloadTooLarge` past it).
:class:`BadGateway` is what an instance that failed the exchange costs the
caller: UNAVAILABLE, sent as HTTP 502.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web
from multidict import CIMultiDict

from kitpy.errors import Cancelled, DeadlineExceeded, KitError, Unavailable, is_retryable
from kitpy.transport.http.codec import READ_ERRORS, body_read_error
from kitpy.transport.http.errors import PayloadTooLarge, RequestTimeout

if TYPE_CHECKING:
    from kitpy.gateway.upstream import UpstreamPool

__all__ = ["IDEMPOTENT_METHODS", "BadGateway", "Exchange", "RequestBody"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""The methods whose requests may be sent again after reaching an instance."""


class BadGateway(Unavailable):
    """An upstream instance failed the exchange: UNAVAILABLE, sent as HTTP 502.

    The connection was refused, reset or closed before a whole answer came, or
    the answer was not HTTP.  502 maps back to UNAVAILABLE in
    :mod:`kitpy.errors`, so a kitpy client raises ``Unavailable`` for it, as for
    the 503 the gateway answers when it has no instance to try at all.
    ``sent`` says whether the request may have reached the instance: False
    when no connection was made, so that any method may go to another one.

    Example::

        BadGateway("could not connect to an instance of 'users'", sent=False)
    """

    status: ClassVar[int] = 502

    def __init__(
        self,
        message: str = "",
        details: Mapping[str, Any] | None = None,
        *,
        sent: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, details, headers=headers)
        self.sent = sent


class RequestBody:
    """The caller's request body, streamed to the upstream at most once and capped at ``limit``.

    ``consumed`` turns True with the first byte taken from the caller, after
    which the body cannot be sent again; ``waiting`` is True while the next
    bytes are awaited from the caller (and stays True if that wait is cut
    off).  A failure reading it is kept in ``error`` as the caller's error
    (:class:`~kitpy.transport.http.PayloadTooLarge` past ``limit``,
    ``InvalidArgument`` for a malformed body, ``Cancelled`` when the caller
    went away), so that the upstream connection it broke is not blamed on the
    instance.

    Example::

        body = RequestBody(request, limit=1024 * 1024)
        await session.put(url, data=body.chunks())
    """

    __slots__ = ("_request", "_whole", "consumed", "error", "limit", "size", "waiting")

    def __init__(self, request: web.Request, *, limit: int) -> None:
        self._request = request
        self.limit = limit
        self.size = 0
        self.consumed = False
        self.waiting = False
        self.error: KitError | None = None
        self._whole: bytes | None = None

    def payload(self) -> bytes | AsyncIterator[bytes]:
        """What an attempt sends: the body's bytes when all of it has already arrived (a
        small body usually comes with the headers; it can be sent again, and is never
        ``consumed``), else :meth:`chunks`."""
        if self._whole is None and not self.consumed:
            stream = self._request.content
            if stream.is_eof() and stream.exception() is None:
                whole = stream.read_nowait()
                if len(whole) > self.limit:
                    raise self._too_large()
                self.size = len(whole)
                self._whole = whole
        return self.chunks() if self._whole is None else self._whole

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (a new iterator per attempt; only the first reads)."""
        stream = self._request.content
        while True:
            self.waiting = True
            try:
                chunk = await stream.readany()
            except Exception as exc:
                self.error = self._read_error(exc)
                raise self.error from exc
            self.waiting = False
            if not chunk:
                return
            self.consumed = True
            self.size += len(chunk)
            if self.size > self.limit:
                raise self._too_large()
            yield chunk

    def _too_large(self) -> KitError:
        self.error = PayloadTooLarge(f"request body is larger than the limit of {self.limit} bytes")
        return self.error

    def _read_error(self, exc: Exception) -> KitError:
        if isinstance(exc, READ_ERRORS):  # bad chunking, a body that does not decompress
            error = body_read_error(self._request, exc)
            if isinstance(error, KitError):
                return error
        return Cancelled("the caller went away while sending the request body")


class Exchange:
    """One request being proxied: what each attempt sends and how far the exchange got.

    ``pool`` is the service it goes to.  ``target`` is the path and query to
    request from an instance (already encoded), ``headers`` the headers to
    send (``X-Timeout-Ms`` is set per attempt), ``body`` the caller's body or
    None.  ``tried`` holds the instance endpoints attempted so far (the
    proxy adds each before calling it).  ``response`` is set once the answer
    to the caller has begun: from then on nothing can be retried or answered
    differently; ``writing`` is True while a piece of it waits for the caller
    to take it.  ``retries_left`` and the pool's budget bound the attempts
    after the first.

    Example::

        exchange = Exchange(request, pool=users, target="/users/7", headers=headers,
                            request_id="4f1c-7", body=None, retries=2)
    """

    __slots__ = (
        "body",
        "headers",
        "idempotent",
        "method",
        "pool",
        "request",
        "request_id",
        "response",
        "retries_left",
        "sent",
        "target",
        "tried",
        "writing",
    )

    def __init__(
        self,
        request: web.Request,
        *,
        pool: UpstreamPool,
        target: str,
        headers: CIMultiDict[str],
        request_id: str,
        body: RequestBody | None,
        retries: int,
    ) -> None:
        self.request = request
        self.pool = pool
        self.method = request.method
        self.idempotent = self.method in IDEMPOTENT_METHODS
        self.target = target
        self.headers = headers
        self.request_id = request_id
        self.body = body
        self.retries_left = retries
        self.tried: set[object] = set()
        self.response: web.StreamResponse | None = None
        self.sent = 0  # bytes of the answer's body relayed to the caller
        self.writing = False

    def may_retry(self, error: BaseException) -> bool:
        """Whether another instance may be tried after ``error``.

        Never once the answer has begun, nor past ``retries_left`` or the
        pool's budget, nor when every instance has been tried (so that the
        last one's own 502 or 503 is relayed).  A request that never reached
        an instance (``BadGateway`` with ``sent=False``) may go elsewhere
        whatever its method; one that did, only when its method is idempotent,
        no byte of its body was consumed (or it has none) and the error is
        retryable (UNAVAILABLE: a connection reset, a 502 or 503 from the
        instance).
        """
        if self.response is not None or self.retries_left < 1:
            return False
        if len(self.tried) >= len(self.pool.instances):
            return False
        if not (isinstance(error, BadGateway) and not error.sent):
            if not self.idempotent or not is_retryable(error):
                return False
            if self.body is not None and self.body.consumed:
                return False
        return self.pool.budget.remaining() >= 1

    def deadline_error(self, service: str) -> KitError:
        """The error for a deadline that passed during an attempt, blaming whoever was awaited.

        The caller, when it was slow to take the answer (``Cancelled``: the
        instance is not at fault, and the answer, begun, is cut short anyway)
        or to send its body (``RequestTimeout``, 408, also kept as the body's
        ``error``); else the instance (``DeadlineExceeded``, 504).
        """
        if self.writing:
            return Cancelled("the caller did not take the answer within the deadline")
        body = self.body
        if body is not None and body.waiting:
            body.error = RequestTimeout("the request body did not arrive within the deadline")
            return body.error
        return DeadlineExceeded(f"no complete answer from {service!r} within the deadline")
