"""Map kitpy :class:`~kitpy.errors.Code` to ``grpc.StatusCode`` and back.

The two enums number the canonical codes the same way, so the mapping is a
lookup table built once; :func:`error_from_rpc_error` turns a failed call into
the :class:`~kitpy.errors.KitError` subclass the server raised, with the
server's message (relayed: one line, at most 512 characters).
"""

from __future__ import annotations

import grpc
import grpc.aio

from kitpy.errors import Code, KitError, from_code
from kitpy.transport.relay import relayed_message

__all__ = ["code_from_grpc_status", "error_from_rpc_error", "grpc_status"]

_TO_GRPC: dict[Code, grpc.StatusCode] = {Code(sc.value[0]): sc for sc in grpc.StatusCode}
_FROM_GRPC: dict[grpc.StatusCode, Code] = {sc: code for code, sc in _TO_GRPC.items()}


def grpc_status(code: Code) -> grpc.StatusCode:
    """The ``grpc.StatusCode`` for a kitpy ``Code`` (same number, same name)."""
    return _TO_GRPC[code]


def code_from_grpc_status(status: grpc.StatusCode) -> Code:
    """The kitpy ``Code`` for a ``grpc.StatusCode``."""
    return _FROM_GRPC.get(status, Code.UNKNOWN)


def error_from_rpc_error(err: grpc.aio.AioRpcError) -> KitError:
    """The ``KitError`` subclass for a failed call, carrying the server's details as message.

    The message is relayed as :func:`kitpy.transport.relay.relayed_message`
    makes it: control characters and line breaks become spaces, and it is cut
    to 512 characters.

    String-valued trailing metadata becomes the error's ``headers``, so a
    ``KitError.headers`` sent by a kitpy server (e.g. ``www-authenticate``)
    arrives with the error.

    Example::

        try:
            await call
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc_error(err) from err   # NotFound, InvalidArgument, ...
    """
    code = _FROM_GRPC.get(err.code(), Code.UNKNOWN)
    if code is Code.OK:  # not an error status; should not happen, keep it visible
        code = Code.UNKNOWN
    trailing = err.trailing_metadata()
    headers = {k: v for k, v in trailing if isinstance(v, str)} if trailing else None
    return from_code(code, relayed_message(err.details() or ""), headers=headers or None)
