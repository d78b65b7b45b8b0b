"""Which headers cross the gateway, in each direction.

A reverse proxy is two HTTP connections, so the headers that describe *a
connection* stop at it (RFC 9110, section 7.6.1): ``Connection`` and every
name it lists, ``Keep-Alive``, ``Proxy-*``, ``TE``, ``Trailer``,
``Transfer-Encoding`` and ``Upgrade`` are dropped both ways.  Everything else
passes unchanged (several ``Set-Cookie`` stay several), except what the
gateway sets itself on the way up:

* ``X-Forwarded-For`` -- the caller's value(s) with the peer's address
  appended (the rightmost entry is the one the gateway vouches for);
* ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` -- the scheme and ``Host``
  the caller used, replacing whatever the caller sent: the gateway is the edge;
* ``X-Request-Id`` -- the caller's usable id or a new one (the proxy also
  sends it back on the response);
* ``Host`` comes from the upstream's address and ``X-Timeout-Ms`` from the
  remaining deadline, per attempt; ``Expect`` is answered by the gateway and
  not passed on;
* ``X-Gateway-Claims`` (:data:`CLAIMS_HEADER`) -- never the caller's: the
  gateway sets it, on routes that verify a JWT, to the claims it verified
  (:mod:`kitpy.gateway.claims`).

Request bodies arrive decoded: aiohttp's server undoes a ``Content-Encoding``
of ``gzip``, ``deflate``, ``br`` or ``zstd`` while reading (so a size limit
counts decoded bytes, and a compression bomb stops at it), so for those the
upstream gets the decoded body without ``Content-Encoding`` and
``Content-Length``.  Responses pass as they are, compressed or not.

Example::

    upstream = request_headers(request, request_id="4f1c-7")
    downstream = response_headers(upstream_response.headers)
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, istr

from kitpy.transport.http.keys import REQUEST_ID_HEADER

__all__ = ["CLAIMS_HEADER", "HOP_BY_HOP", "hop_by_hop", "request_headers", "response_headers"]

CLAIMS_HEADER = "X-Gateway-Claims"
"""The header carrying the claims the gateway verified, signed by it (gRPC: lower case)."""

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""The hop-by-hop header names (lower case) dropped in both directions, besides ``Proxy-*``
and the names a message's ``Connection`` header lists."""

_CONNECTION = istr("Connection")
_FORWARDED_FOR = istr("X-Forwarded-For")
_HOST = istr("Host")
_CONTENT_ENCODING = istr("Content-Encoding")
_CONTENT_LENGTH = istr("Content-Length")

# set by the gateway (or per attempt, or answered by it): never copied from the caller
_SET_HERE = frozenset(
    {
        "host",
        "expect",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-request-id",
        "x-timeout-ms",
        "x-gateway-claims",  # CLAIMS_HEADER: only the gateway's own reaches an upstream
    }
)

_NOT_UP = HOP_BY_HOP | _SET_HERE  # what never goes upstream, when Connection lists nothing

# the codings aiohttp's server decodes while reading a request body (its parser's list)
_DECODED_CODINGS = frozenset({"gzip", "deflate", "br", "zstd"})


def hop_by_hop(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """The lower-case names to drop from a message with ``headers``: :data:`HOP_BY_HOP`
    plus the names its ``Connection`` header lists (``Proxy-*`` is dropped by prefix).

    Example::

        hop_by_hop(CIMultiDict({"Connection": "close, X-Hop"}))   # HOP_BY_HOP | {"close", "x-hop"}
    """
    listed = headers.getall(_CONNECTION, ())
    if not listed:
        return HOP_BY_HOP
    names = {token.strip().lower() for value in listed for token in value.split(",")}
    names.discard("")
    return HOP_BY_HOP | names


def _end_to_end(headers: CIMultiDictProxy[str], drop: frozenset[str]) -> CIMultiDict[str]:
    return CIMultiDict(
        [
            (name, value)
            for name, value in headers.items()
            if (lower := name.lower()) not in drop and not lower.startswith("proxy-")
        ]
    )


def request_headers(request: web.Request, *, request_id: str) -> CIMultiDict[str]:
    """The headers to send upstream for ``request`` (see the module docstring).

    Example::

        headers = request_headers(request, request_id="4f1c-7")
        headers["X-Forwarded-For"]     # "203.0.113.9, 10.0.0.5" (the caller's, then the peer)
    """
    incoming = request.headers
    hops = hop_by_hop(incoming)
    out = _end_to_end(incoming, _NOT_UP if hops is HOP_BY_HOP else hops | _SET_HERE)
    coding = incoming.get(_CONTENT_ENCODING)
    if coding is not None and coding.lower() in _DECODED_CODINGS:
        out.popall(_CONTENT_ENCODING, None)  # the body arrives decoded, so of another length
        out.popall(_CONTENT_LENGTH, None)
    forwarded = ", ".join(incoming.getall(_FORWARDED_FOR, ()))
    peer = request.remote or ""
    if forwarded and peer:
        out[_FORWARDED_FOR] = f"{forwarded}, {peer}"
    elif forwarded or peer:
        out[_FORWARDED_FOR] = forwarded or peer
    out["X-Forwarded-Proto"] = request.scheme
    host = incoming.get(_HOST)
    if host:
        out["X-Forwarded-Host"] = host
    out[REQUEST_ID_HEADER] = request_id
    return out


def response_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The upstream's response headers without the hop-by-hop ones, to send to the caller.

    Example::

        response = web.StreamResponse(status=upstream.status,
                                      headers=response_headers(upstream.headers))
    """
    return _end_to_end(headers, hop_by_hop(headers))
