"""atheris harness: HTTP transport decoding helpers on arbitrary bytes.

Properties: ``parse_timeout`` returns a budget or raises ``InvalidArgument``;
the request decoder raises only msgspec's documented errors (or
``RecursionError``); ``decode_error`` always returns a non-OK ``KitError``;
``error_body`` always encodes, whatever the message.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

with atheris.instrument_imports():
    import msgspec

    from kitpy.errors import Code, InvalidArgument, KitError
    from kitpy.transport.http import decode_error, error_body, json_decoder, parse_timeout


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    lines: list[Line]
    note: str | None = None


decode = json_decoder(Order)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    status = fdp.ConsumeIntInRange(0, 999)
    text = fdp.ConsumeUnicode(24)
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    with contextlib.suppress(InvalidArgument):
        assert parse_timeout(text) >= 0
    with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        decode(body)
    err = decode_error(status, body, text)
    assert isinstance(err, KitError)
    assert err.code is not Code.OK
    error_body(InvalidArgument(text + body.decode("utf-8", "surrogateescape")))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
