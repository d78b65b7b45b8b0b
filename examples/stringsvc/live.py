"""stringsvc's live settings: the rate limit and the log level, changed while it runs.

Without ``--config-etcd`` both are fixed at start-up; an unset ``rate_limit``
adds no limiter at all.  With ``--config-etcd http://HOST:PORT`` they follow
the keys under ``--config-prefix`` (default ``/config/stringsvc/``)::

    etcdctl put /config/stringsvc/rate_limit 5       # 5 requests a second from now on
    etcdctl put /config/stringsvc/log_level debug
    etcdctl del /config/stringsvc/rate_limit         # back to --rate-limit (unset: unlimited)

A value that does not fit (``banana``, ``0``) is rejected with an error log
line naming the setting and the value, and the last good value stays.  Each
accepted change is logged too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from structlog.typing import FilteringBoundLogger

from kitpy import GenericMiddleware
from kitpy.config import Live, Rejection
from kitpy.config.etcd import EtcdSettings
from kitpy.lifecycle import Lifecycle
from kitpy.ratelimit import TokenBucket, rate_limit
from kitpy.sd.etcd import EtcdClient

from .config import LogLevel, Settings

__all__ = ["FIRST_READ", "LiveSettings", "follow_etcd", "rate_limiter"]

FIRST_READ = 2.0
"""Seconds the start-up waits for etcd's values before serving with the static ones."""


def rate_limiter(rate: float | Live[float | None] | None) -> tuple[GenericMiddleware, ...]:
    """The server's rate limit, as middleware to chain: none at all for a fixed ``None``.

    One token bucket with a burst of the rate rounded up, so ``5`` lets five
    calls through at once and five a second after that; a live rate that
    becomes ``None`` lets every call through until it is set again.
    """
    if rate is None:
        return ()
    return (rate_limit(TokenBucket(rate, burst=None)),)


class LiveSettings:
    """``rate_limit`` and ``log_level`` as live settings, by the name of their etcd key.

    Changes and rejections are logged on the logger given to :meth:`log_to`
    (the service's, which itself follows ``log_level``; so it is made after
    this object).
    """

    def __init__(self, config: Settings) -> None:
        self.rate_limit: Live[float | None] = Live(
            config.rate_limit,
            name="rate_limit",
            type=float | None,
            check=_positive_or_none,
            on_reject=self._rejected,
        )
        self.log_level: Live[str] = Live(
            config.log_level, name="log_level", type=LogLevel, on_reject=self._rejected
        )
        self._logger: FilteringBoundLogger | None = None

    def by_name(self) -> dict[str, Live[Any]]:
        """The settings keyed by name: what :class:`~kitpy.config.etcd.EtcdSettings` follows."""
        return {"rate_limit": self.rate_limit, "log_level": self.log_level}

    def log_to(self, logger: FilteringBoundLogger) -> None:
        """Log each change (info) and each rejected value (error) on ``logger``."""
        self._logger = logger
        for name, live in self.by_name().items():
            live.subscribe(functools.partial(self._changed, name))

    def problem(self, message: str) -> None:
        """Log a problem of the etcd source (unreachable, an unknown key) as a warning."""
        if self._logger is None:
            logging.getLogger("kitpy.config").warning("%s", message)
        else:
            self._logger.warning("live settings problem", problem=message)

    def _changed(self, name: str, value: object) -> None:
        if self._logger is not None:
            self._logger.info("live setting changed", setting=name, value=value)

    def _rejected(self, rejection: Rejection) -> None:
        if self._logger is None:
            logging.getLogger("kitpy.config").error("%s", rejection)
            return
        self._logger.error(
            "live setting rejected",
            setting=rejection.name,
            value=rejection.raw,
            source=rejection.source,
            reason=str(rejection.reason),
        )


async def follow_etcd(
    life: Lifecycle, live: LiveSettings, *, url: str, prefix: str
) -> EtcdSettings:
    """Keep ``live`` in step with the keys under ``prefix`` in etcd until ``life`` stops.

    Returns once etcd has been read, or after :data:`FIRST_READ` seconds
    (etcd unreachable: the static values serve, and the source keeps trying).
    """
    etcd = life.close(EtcdClient(url))
    source = await life.enter(
        EtcdSettings(etcd, prefix=prefix, settings=live.by_name(), on_problem=live.problem)
    )
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FIRST_READ):
            await source.synced.wait()
    return source


def _positive_or_none(rate: float | None) -> None:
    if rate is not None and not rate > 0:
        raise ValueError(f"must be > 0, got {rate}")
