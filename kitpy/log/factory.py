"""Build a ready-to-use structlog logger without global configuration.

:func:`make_logger` wires structlog's own pieces together and returns the
logger; nothing is registered with ``structlog.configure``, so two loggers
built here (or one here and an application's own) never interfere.  Its level
is a number, a name, or a live setting (:class:`~kitpy.config.Live`) that
changes while the service runs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from kitpy.config.live import Live, follow

__all__ = ["make_logger"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

_METHODS = ("debug", "info", "warning", "error", "critical")  # a FilteringBoundLogger's levels
_ALIASES = {"warn": "warning", "fatal": "critical", "msg": "info"}  # structlog's, same level

_Render = Callable[[WrappedLogger, str, EventDict], bytes]  # a last processor: a line of bytes


def make_logger(
    *,
    format: Literal["json", "console"] = "json",
    level: int | str | Live[int] | Live[str] = logging.INFO,
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
    line whole with :class:`~kitpy.log.render.LineWriter`, which in a running
    event loop flushes by 64 KiB or 0.05 s after the line that waits longest (at
    once outside a loop).  On a binary stream (stdout, a file) a call with
    keywords only skips structlog's processor loop: the level method renders
    and writes the line itself, the same bytes ~1 us sooner; positional
    ``%``-arguments and ``exc_info`` take structlog's path.  Without orjson it
    falls back to structlog's stock processors and the stdlib ``json``.  ``format="console"``:
    structlog's human-readable renderer, coloured when ``colors`` is true
    (default: when the stream is a terminal).  ``initial_values`` are bound to
    every line (e.g. ``service="stringsvc"``).

    ``level`` is a ``logging`` number or a name (``"debug"``, ``"info"``,
    ``"warning"``, ``"error"``, ``"critical"``); events below it are dropped at
    ~0.4 us each.  A :class:`~kitpy.config.Live` level (of numbers or names)
    takes effect at once on this logger and every logger bound from it; its
    events below the level are dropped by the level method itself, at ~0.1 us
    each (by a first processor on structlog's path, at ~1 us), and a value that
    is not a level is refused (the setting keeps its last good value).

    Example::

        logger = make_logger(format="console", service="stringsvc")
        logger.info("listening", port=8080)

        level = Live("info", name="log_level")
        logger = make_logger(level=level)
        level.set("debug")   # e.g. from etcd: logger.debug(...) is written from now on
    """
    out = sys.stdout if stream is None else stream
    processors: list[Processor]
    wrapped: Any
    direct: _Render | None = None  # the renderer the level methods may call themselves
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
            renderer = OrjsonLineRenderer()
            processors = [renderer]
            buffer = getattr(out, "buffer", None)
            if buffer is not None:
                out.flush()
                wrapped = LineWriter(buffer, keep=out)
                direct = renderer
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
    gate: _LiveLevel | None = None
    if isinstance(level, Live):
        gate = _LiveLevel(level)
        processors.insert(0, gate)
        least = logging.NOTSET  # the filter drops what is below the live level
    else:
        least = _level_number(level)
    wrapper_class = structlog.make_filtering_bound_logger(least)
    if direct is not None:
        wrapper_class = _rendering_wrapper(wrapper_class, least=least, render=direct, gate=gate)
    logger: FilteringBoundLogger = structlog.wrap_logger(
        wrapped,
        processors=processors,
        wrapper_class=wrapper_class,
        context_class=dict,
    ).bind(**initial_values)  # the concrete logger, not a lazy proxy
    return logger


def _rendering_wrapper(
    base: type[FilteringBoundLogger], *, least: int, render: _Render, gate: _LiveLevel | None
) -> type[FilteringBoundLogger]:
    """A subclass of ``base`` whose sync level methods render and write the line themselves.

    ``base`` wraps a logger with a ``msg`` method (:class:`~kitpy.log.render.LineWriter`)
    and runs the processors ``[gate, render]`` (``gate`` when the level is live).
    For a call with an event and keywords only, a level method does that chain's
    work without structlog's ``_proxy_to_logger``, ``_process_event`` and
    processor loop: the gate's level check, the event dict built as structlog
    builds it (the bound context, then the keywords, then ``event``), ``render``,
    ``msg`` -- the same bytes, ~1 us a line sooner.  A call with positional
    ``args`` (%-formatting) or ``exc_info``, or no event (None), takes
    ``base``'s own method.  Levels below ``least`` keep ``base``'s no-op
    methods, and ``bind``/``new``/``unbind`` build this class again (structlog's
    ``self.__class__``).  ``write_event(level, event_dict)`` writes a line built
    by its caller, whole.
    """
    methods: dict[str, Callable[..., Any]] = {}
    for name in _METHODS:
        if _LEVELS[name] >= least:
            methods[name] = _rendering_method(getattr(base, name), name, render, gate)
    by_number = {_LEVELS[name]: method for name, method in methods.items()}
    for alias, name in _ALIASES.items():
        if name in methods:
            methods[alias] = methods[name]
    base_log: Callable[..., Any] = base.log

    def log(self: Any, level: int, event: str | None, *args: Any, **kw: Any) -> Any:
        method = by_number.get(level)
        if method is None:  # filtered out, or not one of the five levels
            return base_log(self, level, event, *args, **kw)
        return method(self, event, *args, **kw)

    methods["log"] = log

    def write_event(self: Any, level: str, event_dict: EventDict) -> None:
        """Write ``event_dict`` as one line at ``level``: its own keys, in their order.

        Only ``level`` and ``timestamp`` are added; not the bound context, which a
        caller building its lines itself puts first (``structlog.get_context``), as
        :func:`~kitpy.log.call_logging` does.  The dict becomes the line's: do not
        use it afterwards.  One dict per line, where a level method's keywords
        make three.
        """
        number = _LEVELS[level]
        if number < least or (gate is not None and number < gate.least):
            return
        writer = self._logger
        writer.msg(render(writer, level, event_dict))

    methods["write_event"] = write_event
    return cast("type[FilteringBoundLogger]", type(base.__name__, (base,), methods))


def _rendering_method(
    normal: Callable[..., Any], name: str, render: _Render, gate: _LiveLevel | None
) -> Callable[..., Any]:
    """The level method ``name`` of :func:`_rendering_wrapper`; ``normal`` is structlog's."""
    number = _LEVELS[name]
    get_context = structlog.get_context

    def method(self: Any, event: str | None, *args: Any, **kw: Any) -> Any:
        if gate is not None and number < gate.least:
            return None
        if args or "exc_info" in kw or event is None:
            return normal(self, event, *args, **kw)
        writer = self._logger
        return writer.msg(render(writer, name, {**get_context(self), **kw, "event": event}))

    method.__name__ = method.__qualname__ = name
    return method


def _level_number(level: int | str) -> int:
    """A ``logging`` level from a number or a name; ValueError for anything else.

    >>> _level_number("warning"), _level_number(10)
    (30, 10)
    """
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    number = _LEVELS.get(str(level).strip().lower())
    if number is None:
        names = ", ".join(n for n in _LEVELS if n != "warn")
        raise ValueError(f"expected a log level ({names}), got {level!r}")
    return number


class _LiveLevel:
    """The first processor of a logger whose level is live: drops events below it.

    It follows the setting (:func:`~kitpy.config.follow`), so each event costs
    a dictionary lookup and a comparison; a value that is not a level is
    refused and the setting keeps its last good value.
    """

    __slots__ = ("__weakref__", "least")

    def __init__(self, level: Live[int] | Live[str]) -> None:
        setting = cast("Live[int | str]", level)  # only read: numbers or names, both taken
        self.least = _level_number(follow(setting, self._follow))

    def _follow(self, level: int | str) -> None:
        self.least = _level_number(level)

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        if _LEVELS.get(method_name, logging.CRITICAL) < self.least:
            raise structlog.DropEvent
        return event_dict


def _stock_processors() -> list[Processor]:
    """Level and ISO timestamp with structlog's own processors."""
    return [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _decode(logger: Any, method_name: str, rendered: Any) -> str:
    """Turn orjson's bytes into text for a text-only stream."""
    return rendered.decode() if isinstance(rendered, bytes) else str(rendered)
