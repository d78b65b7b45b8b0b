"""Garbage collection for a long-running server: leave start-up's objects alone, collect less often.

CPython's cycle collector runs a young-generation pass every 700 net
allocations of container objects, and now and then a full pass over every
object the process holds.  A server under load crosses 700 many times a
second just from the objects of the requests in flight, promotes them, and
so triggers full passes over everything start-up made -- for a process that
imported grpc and protobuf, ~17 ms each, paid by whichever request is
running (measured in the gateway: 13 full passes in 8 s of load, ~13 us of
CPU a request, and its p99).  :func:`settle_heap`, called once the service
is up, moves the objects alive then into the permanent generation
(``gc.freeze``: never scanned again) and raises the young threshold, so
short-lived request objects die by reference counting before a pass comes.
Cyclic garbage is still collected, just in larger batches.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle_heap"]

YOUNG_THRESHOLD = 10_000
"""Net container allocations between young-generation passes (CPython's default is 700)."""


def settle_heap(*, young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Freeze what start-up made and collect the young generation every ``young_threshold``
    net allocations; call it once, when the servers are up.

    Example::

        await serve_http(life, app, host="0.0.0.0", port=8080)
        settle_heap()
        await life.wait_for_signal()
    """
    if young_threshold < 1:
        raise ValueError("young_threshold must be at least 1")
    gc.collect()  # what start-up left as garbage goes now, not into the permanent generation
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
