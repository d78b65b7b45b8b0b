"""Build a ready-to-use structlog logger without global configuration.

:func:`make_logger` wires structlog's own pieces together and returns the
logger; nothing is registered with ``structlog.configure``, so two loggers
built here (or one here and an application's own) never interfere.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import FilteringBoundLogger, Processor

__all__ = ["make_logger"]


def make_logger(
    *,
    format: Literal["json", "console"] = "json",
    level: int = logging.INFO,
    stream: TextIO | None = None,
    colors: bool | None = None,
    **initial_values: Any,
) -> FilteringBoundLogger:
    """Return a structlog logger writing one line per event to ``stream`` (default stdout).

    ``format="json"``: one JSON object per line with ``timestamp`` (ISO 8601,
    UTC), ``level``, ``event`` and the event's fields; exceptions become a
    structured ``exception`` list.  It renders with one lean processor
    (:class:`~kitpy.log.render.OrjsonLineRenderer`: orjson straight to bytes,
    ~3 us a line against ~20 us for structlog's stock chain) and writes each
    line whole with :class:`~kitpy.log.render.LineWriter`, which flushes once
    per event-loop iteration (at once outside a loop); without orjson it falls
    back to structlog's stock processors and the stdlib ``json``.  ``format="console"``:
    structlog's human-readable renderer, coloured when ``colors`` is true
    (default: when the stream is a terminal).  Events below ``level`` are dropped at ~0.4 us each.
    ``initial_values`` are bound to every line (e.g. ``service="stringsvc"``).

    Example::

        logger = make_logger(format="console", service="stringsvc")
        logger.info("listening", port=8080)
    """
    out = sys.stdout if stream is None else stream
    processors: list[Processor]
    wrapped: Any
    if format == "json":
        try:
            from kitpy.log.render import LineWriter, OrjsonLineRenderer
        except ImportError:  # pragma: no cover - orjson ships with kitpy[log]
            processors = [
                *_stock_processors(),
                structlog.processors.ExceptionRenderer(
                    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
                ),
                structlog.processors.JSONRenderer(),
            ]
            wrapped = structlog.PrintLogger(out)
        else:
            processors = [OrjsonLineRenderer()]
            buffer = getattr(out, "buffer", None)
            if buffer is not None:
                out.flush()
                wrapped = LineWriter(buffer, keep=out)
            else:  # a text-only stream such as io.StringIO
                processors.append(_decode)
                wrapped = structlog.PrintLogger(out)
    elif format == "console":
        if colors is None:
            colors = out.isatty()
        processors = [*_stock_processors(), structlog.dev.ConsoleRenderer(colors=colors)]
        wrapped = structlog.PrintLogger(out)
    else:
        raise ValueError(f"format must be 'json' or 'console', not {format!r}")
    logger: FilteringBoundLogger = structlog.wrap_logger(
        wrapped,
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        context_class=dict,
    ).bind(**initial_values)  # the concrete logger, not a lazy proxy
    return logger


def _stock_processors() -> list[Processor]:
    """Level and ISO timestamp with structlog's own processors."""
    return [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _decode(logger: Any, method_name: str, rendered: Any) -> str:
    """Turn orjson's bytes into text for a text-only stream."""
    return rendered.decode() if isinstance(rendered, bytes) else str(rendered)
