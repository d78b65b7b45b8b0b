"""Helpers for testing endpoints and middleware without a network.

* :class:`FakeClock` -- virtual time for deadlines, breakers, limiters and retries.
"""

from kitpy.testing.clock import FakeClock

__all__ = ["FakeClock"]
