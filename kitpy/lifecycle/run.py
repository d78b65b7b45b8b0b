"""Run a service's ``serve`` coroutine as a process: a start-up failure is one line, no traceback.

:func:`run` is the body of a service's ``main``: ``asyncio.run(serve(...))``,
with the failures an operator causes -- a bad setting, a port in use, a
dependency that is not there -- printed as one line saying what is wrong and
what to do, and the exit status saying which kind it was:

* **2, bad configuration**: a ``ValueError`` or ``TypeError`` (a too-short JWT
  secret, a malformed address), as :func:`kitpy.config.load` exits for a bad
  setting;
* **1, unavailable**: an ``OSError`` (an address in use, a refused connection) or
  a :class:`~kitpy.errors.KitError` (an etcd or broker that does not answer).

Anything else is a bug and keeps its traceback.  Requests never get here:
kitpy's Servers answer every error themselves, so what reaches ``main`` is the
process's own start or stop failing::

    def main() -> None:
        settings = load(Settings, prefix="GREETER")
        run(serve(settings), name="greeter")
"""

from __future__ import annotations

import asyncio
import errno
import sys
from collections.abc import Coroutine
from typing import Any

from kitpy.errors import KitError

__all__ = ["EXIT_CONFIG", "EXIT_UNAVAILABLE", "describe_failure", "run"]

EXIT_CONFIG = 2
"""The exit status for a bad setting (the one argparse and kitpy.config use)."""

EXIT_UNAVAILABLE = 1
"""The exit status for a dependency or resource that is not there."""

_HINTS = {
    errno.EADDRINUSE: "another process listens there: stop it or pick another address",
    errno.EADDRNOTAVAIL: "that address is not on this machine: pick one of its addresses",
    errno.EACCES: "not allowed: ports below 1024 need privileges, so pick a higher one",
    errno.ECONNREFUSED: "nothing listens there: start it, or fix the address",
    errno.EHOSTUNREACH: "the host cannot be reached: check the address and the network",
    errno.ENETUNREACH: "the network cannot be reached: check the address and the network",
    errno.EMFILE: "out of file descriptors: raise the limit (ulimit -n)",
}


def describe_failure(exc: BaseException) -> tuple[int, str] | None:
    """``(exit status, one line)`` for a start-up failure an operator can fix, else None.

    >>> describe_failure(OSError(98, "Address already in use"))[0]
    1
    """
    if isinstance(exc, KitError):
        return EXIT_UNAVAILABLE, f"cannot start: {exc.message} ({exc.code.name})"
    if isinstance(exc, OSError):
        hint = _HINTS.get(exc.errno or 0)
        text = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename:
            text = f"{text}: {exc.filename}"
        return EXIT_UNAVAILABLE, f"cannot start: {text}" + (f"; {hint}" if hint else "")
    if isinstance(exc, ValueError | TypeError):
        return EXIT_CONFIG, f"bad configuration: {exc}"
    return None


def run(main: Coroutine[Any, Any, object], *, name: str) -> None:
    """``asyncio.run(main)``; exit with one line on stderr when it fails for an operator's reason.

    See the module docstring for which failures and which exit status.  A
    ``KeyboardInterrupt`` before the service has installed its own signal
    handling exits 130 quietly.
    """
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        failure = describe_failure(exc)
        if failure is None:
            raise
        status, line = failure
        print(f"{name}: {line}", file=sys.stderr, flush=True)
        sys.exit(status)
