"""Call stringsvc through the gateway with a Connect client (``connect-python``).

Usage::

    python -m examples.gateway.client hello                  # HELLO (binary protobuf)
    python -m examples.gateway.client hello --json           # the same call in Connect JSON
    python -m examples.gateway.client "" --url http://127.0.0.1:8000
    # invalid_argument: empty string   (on stderr, exit status 1)

The gateway turns the Connect call into a gRPC call to a stringsvc instance.  The
client needs no generated Connect stubs: a ``MethodInfo`` naming the method and its
message classes (stringsvc's generated ``*_pb2`` module) is enough.

It uses connect-python's blocking client.  Its asyncio client answers through a
thread of pyqwest's Rust runtime that may still be handing the reply to the event
loop when a short script like this one ends; the interpreter then stops that thread
mid-call and the process aborts (exit status 134) after printing the answer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from connectrpc.client import ConnectClientSync
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo

from examples.stringsvc.pb import stringsvc_pb2 as pb

__all__ = ["UPPERCASE", "main", "uppercase"]

DEFAULT_URL = "http://127.0.0.1:8000"

UPPERCASE: MethodInfo[pb.UppercaseRequest, pb.UppercaseResponse] = MethodInfo(
    name="Uppercase",
    service_name="stringsvc.v1.StringService",
    input=pb.UppercaseRequest,
    output=pb.UppercaseResponse,
    idempotency_level=IdempotencyLevel.UNKNOWN,
)
"""stringsvc's Uppercase method, as connect-python calls it."""


def uppercase(s: str, *, url: str = DEFAULT_URL, json: bool = False) -> str:
    """``s`` upper-cased by a stringsvc instance behind the gateway at ``url``.

    ``json`` sends Connect JSON instead of binary protobuf.  A failed call raises
    :class:`connectrpc.errors.ConnectError` (``invalid_argument`` for an empty ``s``).
    """
    with ConnectClientSync(url, proto_json=json, timeout_ms=2000) as client:
        reply = client.execute_unary(request=pb.UppercaseRequest(s=s), method=UPPERCASE)
    return reply.v


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: print the upper-cased text, or ``code: message`` and exit 1."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.gateway.client",
        description="Call stringsvc's Uppercase through the gateway with connect-python.",
    )
    parser.add_argument("text", help="the text to upper-case")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the gateway (default {DEFAULT_URL})")
    parser.add_argument("--json", action="store_true", help="Connect JSON instead of protobuf")
    args = parser.parse_args(argv)
    try:
        print(uppercase(args.text, url=args.url, json=args.json))
    except ConnectError as exc:
        print(f"{exc.code.value}: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
