"""One error vocabulary for every transport.

:class:`Code` holds the 17 canonical gRPC status codes.  :class:`KitError` carries
a code and a human-readable message (and optional JSON-safe ``details``); its
subclasses name the codes users raise most.  The HTTP and gRPC transports map
codes both ways, so an :class:`InvalidArgument` raised behind a gRPC server
reaches an HTTP caller as a 400 and a kitpy client as an ``InvalidArgument``.

The code also decides policy, shared by the breaker, retry, logging and tracing:

* :func:`is_client_fault` -- the caller's mistake (bad input, no such thing,
  not allowed, rate limited).  Never retried, never trips a breaker, logged
  below error level.
* :func:`is_server_fault` -- the callee failed or could not be reached.
* :func:`is_retryable` -- worth another attempt: UNAVAILABLE, DEADLINE_EXCEEDED.
* :func:`is_cancellation` -- the caller gave up: neither success nor failure.

Each takes a :class:`Code` or an exception (classified by :func:`error_code`),
so the same functions serve as ``classifier=`` for breakers, retry and fallback.

HTTP status table (``http_status`` / ``code_from_http_status``):

=====================  ====  ======================================================
Code                   HTTP  back from HTTP
=====================  ====  ======================================================
OK                     200   any 2xx
INVALID_ARGUMENT       400   400, 413, 415, 422 and other unlisted 4xx
FAILED_PRECONDITION    400
OUT_OF_RANGE           400
UNAUTHENTICATED        401   401
PERMISSION_DENIED      403   403
NOT_FOUND              404   404
ALREADY_EXISTS         409   409
ABORTED                409
RESOURCE_EXHAUSTED     429   429
CANCELLED              499   499
UNIMPLEMENTED          501   501, 405
UNAVAILABLE            503   502, 503
DEADLINE_EXCEEDED      504   504, 408
INTERNAL               500   500
UNKNOWN                500   other 5xx and anything else
DATA_LOSS              500
=====================  ====  ======================================================

Where several codes share a status, a kitpy server also sends the code's name in
its error body, so kitpy-to-kitpy calls keep the exact code.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeAlias

__all__ = [
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "CircuitOpen",
    "Classifier",
    "Code",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "KitError",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "code_from_http_status",
    "error_class",
    "error_code",
    "from_code",
    "http_status",
    "is_cancellation",
    "is_client_fault",
    "is_retryable",
    "is_server_fault",
    "to_kit_error",
]


class Code(enum.IntEnum):
    """The canonical status codes, numbered as gRPC numbers them."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class KitError(Exception):
    """An error with a status :class:`Code` that every transport understands.

    ``message`` is meant for the caller and crosses the wire as is, so it must
    not contain secrets.  ``details`` is an optional JSON-safe mapping sent
    alongside it.  ``headers`` are transport metadata to send with the error
    (HTTP response headers, gRPC trailing metadata), e.g. ``WWW-Authenticate``.

    Example::

        raise KitError(Code.NOT_FOUND, "no such user: 42")
        raise NotFound("no such user: 42")        # the same, spelled shorter
    """

    default_code: ClassVar[Code] = Code.UNKNOWN

    code: Code
    message: str
    details: Mapping[str, Any] | None
    headers: Mapping[str, str] | None

    def __init__(
        self,
        code: Code | None = None,
        message: str = "",
        details: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.code = self.default_code if code is None else Code(code)
        self.message = message or self.code.name.replace("_", " ").lower()
        self.details = details
        self.headers = headers
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.message!r})"


class _CodedError(KitError):
    """Base of the one-code subclasses: constructed as ``Cls(message, details=None)``."""

    def __init__(
        self,
        message: str = "",
        details: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(None, message, details, headers=headers)


class Cancelled(_CodedError):
    """CANCELLED: the caller gave up (HTTP 499)."""

    default_code = Code.CANCELLED


class Unknown(_CodedError):
    """UNKNOWN: an error with no better classification (HTTP 500)."""

    default_code = Code.UNKNOWN


class InvalidArgument(_CodedError):
    """INVALID_ARGUMENT: the request is malformed or a field is invalid (HTTP 400)."""

    default_code = Code.INVALID_ARGUMENT


class DeadlineExceeded(_CodedError):
    """DEADLINE_EXCEEDED: the deadline passed before the work finished (HTTP 504)."""

    default_code = Code.DEADLINE_EXCEEDED


class NotFound(_CodedError):
    """NOT_FOUND: the requested thing does not exist (HTTP 404)."""

    default_code = Code.NOT_FOUND


class AlreadyExists(_CodedError):
    """ALREADY_EXISTS: the thing to create exists already (HTTP 409)."""

    default_code = Code.ALREADY_EXISTS


class PermissionDenied(_CodedError):
    """PERMISSION_DENIED: authenticated, but not allowed to do this (HTTP 403)."""

    default_code = Code.PERMISSION_DENIED


class RateLimited(_CodedError):
    """RESOURCE_EXHAUSTED: a rate or quota limit rejected the call (HTTP 429)."""

    default_code = Code.RESOURCE_EXHAUSTED


class FailedPrecondition(_CodedError):
    """FAILED_PRECONDITION: the system is not in a state to do this (HTTP 400)."""

    default_code = Code.FAILED_PRECONDITION


class Aborted(_CodedError):
    """ABORTED: a concurrency conflict such as a failed transaction (HTTP 409)."""

    default_code = Code.ABORTED


class OutOfRange(_CodedError):
    """OUT_OF_RANGE: a value past the valid range, e.g. reading past the end (HTTP 400)."""

    default_code = Code.OUT_OF_RANGE


class Unimplemented(_CodedError):
    """UNIMPLEMENTED: the operation is not supported (HTTP 501)."""

    default_code = Code.UNIMPLEMENTED


class Internal(_CodedError):
    """INTERNAL: an invariant broke on the server side (HTTP 500)."""

    default_code = Code.INTERNAL


class Unavailable(_CodedError):
    """UNAVAILABLE: the service cannot be reached or is shedding load (HTTP 503). Retryable."""

    default_code = Code.UNAVAILABLE


class CircuitOpen(Unavailable):
    """A circuit breaker is open, so the call was not attempted (UNAVAILABLE, HTTP 503)."""


class DataLoss(_CodedError):
    """DATA_LOSS: unrecoverable data loss or corruption (HTTP 500)."""

    default_code = Code.DATA_LOSS


class Unauthenticated(_CodedError):
    """UNAUTHENTICATED: the credentials are missing, malformed or expired (HTTP 401)."""

    default_code = Code.UNAUTHENTICATED


_CLASS_FOR_CODE: dict[Code, type[KitError]] = {
    Code.CANCELLED: Cancelled,
    Code.UNKNOWN: Unknown,
    Code.INVALID_ARGUMENT: InvalidArgument,
    Code.DEADLINE_EXCEEDED: DeadlineExceeded,
    Code.NOT_FOUND: NotFound,
    Code.ALREADY_EXISTS: AlreadyExists,
    Code.PERMISSION_DENIED: PermissionDenied,
    Code.RESOURCE_EXHAUSTED: RateLimited,
    Code.FAILED_PRECONDITION: FailedPrecondition,
    Code.ABORTED: Aborted,
    Code.OUT_OF_RANGE: OutOfRange,
    Code.UNIMPLEMENTED: Unimplemented,
    Code.INTERNAL: Internal,
    Code.UNAVAILABLE: Unavailable,
    Code.DATA_LOSS: DataLoss,
    Code.UNAUTHENTICATED: Unauthenticated,
}


def error_class(code: Code) -> type[KitError]:
    """The :class:`KitError` subclass a client raises for ``code`` (``KitError`` for OK)."""
    return _CLASS_FOR_CODE.get(code, KitError)


def from_code(
    code: Code,
    message: str = "",
    details: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> KitError:
    """Build the matching subclass instance for ``code``, e.g. to re-raise a wire error.

    Example::

        err = from_code(Code.NOT_FOUND, "no such user")
        assert isinstance(err, NotFound)
    """
    cls = _CLASS_FOR_CODE.get(code)
    if cls is None:
        return KitError(code, message, details, headers=headers)
    err = cls.__new__(cls)
    KitError.__init__(err, code, message, details, headers=headers)
    return err


_HTTP_FOR_CODE: dict[Code, int] = {
    Code.OK: 200,
    Code.INVALID_ARGUMENT: 400,
    Code.FAILED_PRECONDITION: 400,
    Code.OUT_OF_RANGE: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.ABORTED: 409,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.CANCELLED: 499,
    Code.UNIMPLEMENTED: 501,
    Code.UNAVAILABLE: 503,
    Code.DEADLINE_EXCEEDED: 504,
    Code.INTERNAL: 500,
    Code.UNKNOWN: 500,
    Code.DATA_LOSS: 500,
}

_CODE_FOR_HTTP: dict[int, Code] = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    405: Code.UNIMPLEMENTED,
    408: Code.DEADLINE_EXCEEDED,
    409: Code.ALREADY_EXISTS,
    429: Code.RESOURCE_EXHAUSTED,
    499: Code.CANCELLED,
    500: Code.INTERNAL,
    501: Code.UNIMPLEMENTED,
    502: Code.UNAVAILABLE,
    503: Code.UNAVAILABLE,
    504: Code.DEADLINE_EXCEEDED,
}


def http_status(code: Code) -> int:
    """The HTTP status for ``code`` (see the table in the module docstring)."""
    return _HTTP_FOR_CODE[code]


def code_from_http_status(status: int) -> Code:
    """The :class:`Code` an HTTP status means to a client (see the module table)."""
    code = _CODE_FOR_HTTP.get(status)
    if code is not None:
        return code
    if 200 <= status < 300:
        return Code.OK
    if 400 <= status < 500:
        return Code.INVALID_ARGUMENT
    return Code.UNKNOWN


def error_code(exc: BaseException) -> Code:
    """Classify any exception as a :class:`Code`.

    ``KitError`` -> its code; ``TimeoutError`` (which ``asyncio.TimeoutError`` is)
    -> DEADLINE_EXCEEDED; ``asyncio.CancelledError`` -> CANCELLED;
    any other ``OSError`` (``ConnectionError``, a DNS failure, ...) -> UNAVAILABLE;
    anything else -> UNKNOWN.
    """
    if isinstance(exc, KitError):
        return exc.code
    if isinstance(exc, TimeoutError):
        return Code.DEADLINE_EXCEEDED
    if isinstance(exc, asyncio.CancelledError):
        return Code.CANCELLED
    if isinstance(exc, OSError):
        return Code.UNAVAILABLE
    return Code.UNKNOWN


def to_kit_error(exc: BaseException) -> KitError:
    """Return ``exc`` if it is a ``KitError``, else a new one for its :func:`error_code`.

    The new error's message is generic: an unexpected exception's text may hold
    internals and must not reach a client.  The original is the ``__cause__``.
    """
    if isinstance(exc, KitError):
        return exc
    err = from_code(error_code(exc))
    err.__cause__ = exc
    return err


_CLIENT_FAULTS = frozenset(
    {
        Code.INVALID_ARGUMENT,
        Code.NOT_FOUND,
        Code.ALREADY_EXISTS,
        Code.PERMISSION_DENIED,
        Code.UNAUTHENTICATED,
        Code.RESOURCE_EXHAUSTED,
        Code.FAILED_PRECONDITION,
        Code.ABORTED,
        Code.OUT_OF_RANGE,
        Code.UNIMPLEMENTED,
    }
)
_SERVER_FAULTS = frozenset(
    {Code.UNKNOWN, Code.INTERNAL, Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.DATA_LOSS}
)
_RETRYABLE = frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED})

Classifier: TypeAlias = Callable[[BaseException], bool]
"""A failure test over an exception, such as :func:`is_server_fault` or :func:`is_retryable`.

Every kitpy middleware that asks "did that fail?" takes one as ``classifier=``.
To count another library's errors too, combine with the defaults::

    def failed(exc: BaseException) -> bool:
        return is_server_fault(exc) or isinstance(exc, MyDriverError)
"""


def _code(subject: Code | BaseException) -> Code:
    return subject if isinstance(subject, Code) else error_code(subject)


def is_client_fault(subject: Code | BaseException) -> bool:
    """True when a code or exception blames the request, not the service.

    These are never retried, never trip a circuit breaker and are logged below
    error level.
    """
    return _code(subject) in _CLIENT_FAULTS


def is_server_fault(subject: Code | BaseException) -> bool:
    """True when a code or exception blames the service or the path to it.

    UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS, connection
    errors (``OSError``) and any unexpected exception: what a circuit breaker
    counts as a failure.  OK and CANCELLED (the caller gave up) are neither
    client nor server faults.
    """
    return _code(subject) in _SERVER_FAULTS


def is_retryable(subject: Code | BaseException) -> bool:
    """True when another attempt may succeed: UNAVAILABLE, DEADLINE_EXCEEDED, connection errors."""
    return _code(subject) in _RETRYABLE


def is_cancellation(subject: Code | BaseException) -> bool:
    """True for CANCELLED and ``asyncio.CancelledError``: neither success nor failure."""
    return _code(subject) is Code.CANCELLED
