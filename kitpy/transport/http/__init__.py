"""HTTP/JSON transport on aiohttp: Server and Client endpoints, codecs, error mapping.

Serve an endpoint::

    app = web.Application()
    add_routes(app, {
        "POST /uppercase": Server(uppercase, decode_json(UppercaseRequest), encode_json),
    })
    add_fallback(app)                              # JSON 404/405 for unmatched requests
    run(app, host="127.0.0.1", port=8080)          # graceful shutdown on SIGINT/SIGTERM

Call one (the Client is itself an Endpoint, so middleware stacks on it)::

    uppercase = Client(session, "POST", f"{base}/uppercase",
                       encode_json_request, decode_json_response(UppercaseResponse))
    await uppercase(Context().with_timeout(0.5), UppercaseRequest(s="hi"))

* Errors: the server answers every error with
  ``{"error": {"code": "NOT_FOUND", "message": "...", "details": {...}}}`` and the
  status from the code table (:mod:`kitpy.errors`); the client raises the same
  ``KitError`` subclass.  Bad input is a 400 (413 too large, 415 wrong
  Content-Type), never a 500; unexpected exceptions are a 500 whose body never
  shows their text (code UNKNOWN, as gRPC answers).  Every response carries
  ``X-Request-Id``.  :func:`add_fallback` gives unmatched requests the same
  body (404 NOT_FOUND, 405 UNIMPLEMENTED) instead of aiohttp's plain text.
* The Client does not trust its upstream: it reads at most ``max_response_size``
  (default :data:`DEFAULT_MAX_RESPONSE_SIZE`, 4 MiB; custom decoders read with
  :func:`read_body`), at most :data:`MAX_ERROR_BODY_SIZE` of an error body, and
  :func:`decode_error` maps the status first and relays messages capped.
* Deadlines travel in ``X-Timeout-Ms: <milliseconds>`` (see :mod:`.keys`).
* JSON is msgspec (see :mod:`.codec`).
* Hook shapes: :mod:`.types`.

Stream a server-streaming endpoint as server-sent events, and read it back
(see :mod:`.sse_server`, :mod:`.sse_client`, :mod:`.sse`)::

    add_routes(app, {"GET /ticks": SseServer(ticks, decode_ticks, encode_json_event)})
    async for event in sse_events(session, f"{base}/ticks"): ...
"""

from kitpy._extras import require

require("aiohttp", "msgspec", extra="http")

from kitpy.transport.http.client import Client
from kitpy.transport.http.codec import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE,
    MAX_RESPONSE_SIZE,
    READ_ERRORS,
    JsonRequestDecoder,
    body_read_error,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
    json_decoder,
    read_body,
)
from kitpy.transport.http.errors import (
    MAX_ERROR_BODY_SIZE,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    UnsupportedTransferCoding,
    decode_error,
    default_error_encoder,
    error_body,
    response_status,
)
from kitpy.transport.http.keys import (
    HEADERS,
    METHOD,
    PATH,
    PEER,
    REQUEST,
    REQUEST_ID_HEADER,
    ROUTE,
    TIMEOUT_HEADER,
    format_timeout,
    incoming_request_id,
    parse_timeout,
)
from kitpy.transport.http.routes import Handler, add_fallback, add_routes
from kitpy.transport.http.run import RunningApp, run, serve, start_app, wait_for_signal
from kitpy.transport.http.server import Server
from kitpy.transport.http.sse import (
    DEFAULT_MAX_EVENT_SIZE,
    LAST_EVENT_ID_HEADER,
    Event,
    SseParser,
)
from kitpy.transport.http.sse_client import (
    DEFAULT_READ_TIMEOUT,
    SseClient,
    decode_json_event,
    sse_events,
)
from kitpy.transport.http.sse_server import (
    DEFAULT_HEARTBEAT,
    DEFAULT_WRITE_TIMEOUT,
    LAST_EVENT_ID,
    SseServer,
    encode_json_event,
)
from kitpy.transport.http.types import (
    NOT_YET,
    ClientAfter,
    ClientBefore,
    ClientFinalizer,
    DecodeNow,
    DecodeRequest,
    DecodeResponse,
    EncodeRequest,
    EncodeResponse,
    ErrorDecoder,
    ErrorEncoder,
    ErrorHandler,
    NotYet,
    OutgoingRequest,
    ServerAfter,
    ServerBefore,
    ServerFinalizer,
    ServerOptions,
)

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_WRITE_TIMEOUT",
    "HEADERS",
    "LAST_EVENT_ID",
    "LAST_EVENT_ID_HEADER",
    "MAX_ERROR_BODY_SIZE",
    "MAX_RESPONSE_SIZE",
    "METHOD",
    "NOT_YET",
    "PATH",
    "PEER",
    "READ_ERRORS",
    "REQUEST",
    "REQUEST_ID_HEADER",
    "ROUTE",
    "TIMEOUT_HEADER",
    "Client",
    "ClientAfter",
    "ClientBefore",
    "ClientFinalizer",
    "DecodeNow",
    "DecodeRequest",
    "DecodeResponse",
    "JsonRequestDecoder",
    "EncodeRequest",
    "EncodeResponse",
    "ErrorDecoder",
    "ErrorEncoder",
    "ErrorHandler",
    "Event",
    "Handler",
    "MethodNotAllowed",
    "NotYet",
    "OutgoingRequest",
    "PayloadTooLarge",
    "RequestTimeout",
    "RunningApp",
    "Server",
    "ServerAfter",
    "ServerBefore",
    "ServerFinalizer",
    "ServerOptions",
    "SseClient",
    "SseParser",
    "SseServer",
    "UnsupportedMediaType",
    "UnsupportedTransferCoding",
    "add_fallback",
    "add_routes",
    "body_read_error",
    "decode_error",
    "decode_json",
    "decode_json_event",
    "decode_json_response",
    "default_error_encoder",
    "encode_json",
    "encode_json_event",
    "encode_json_request",
    "error_body",
    "format_timeout",
    "incoming_request_id",
    "json_decoder",
    "parse_timeout",
    "read_body",
    "response_status",
    "run",
    "serve",
    "sse_events",
    "start_app",
    "wait_for_signal",
]
