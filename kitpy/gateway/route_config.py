"""Reading a route table from TOML or JSON text: the file format of the gateway's routes.

The document has ``[[route]]`` tables (their order does not change what
matches; errors number them from 1, in file order) and ``[upstream.NAME]``
tables; docs/gateway.md shows a full example.  Values are read with :func:`kitpy.config.convert`, so
durations are written ``"2s"``/``"250ms"`` (or a number of seconds) and sizes
``"1MiB"``/``"512KiB"`` (or a number of bytes).  Unknown fields are errors, so
a typo never passes silently; top-level tables other than ``route`` and
``upstream`` are errors too unless listed in ``ignore`` (a gateway's own
settings in the same file).  JSON text (it starts with ``{``) has the same
shape, for an etcd key written by a program.

>>> table = parse_routes('''
... [[route]]
... prefix = "/api"
... upstream = "svc"
... timeout = "2s"
...
... [upstream.svc]
... addresses = ["127.0.0.1:8081"]
... ''')
>>> table.match("GET", "/api/users").timeout
2.0
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from kitpy.config.convert import convert
from kitpy.config.types import Duration, Size
from kitpy.gateway.discovery import Upstream
from kitpy.gateway.routes import Route, RouteError, RouteTable

__all__ = ["load_routes", "parse_routes"]

_ROUTE_FIELDS: dict[str, Any] = {
    "name": str,
    "method": str,
    "prefix": str,
    "upstream": str,
    "kind": Literal["http", "connect"],
    "timeout": Duration,
    "retries": int,
    "strip_prefix": bool,
    "max_body_size": Size,
    "auth": Literal["none", "jwt"],
    "rate_limit": float | None,
    "cors_origins": tuple[str, ...],
}
_REQUIRED = ("prefix", "upstream")
_UPSTREAM_FIELDS: dict[str, Any] = {
    "addresses": tuple[str, ...],
    "etcd_prefix": str,
    "dns_srv": str,
    "grpc_address_key": str,
    "descriptor_set": str,
}


def parse_routes(raw: str | Mapping[str, Any], *, ignore: Collection[str] = ()) -> RouteTable:
    """A :class:`~kitpy.gateway.routes.RouteTable` from TOML or JSON text, or a parsed mapping.

    Raises :class:`~kitpy.gateway.routes.RouteError` (a ``ValueError``) whose
    message names the route or upstream and the field at fault.
    """
    data = _document(raw) if isinstance(raw, str) else raw
    unknown = [key for key in data if key not in ("route", "upstream") and key not in ignore]
    if unknown:
        raise RouteError(
            f"unknown top-level key {unknown[0]!r} (expected [[route]] and [upstream.NAME] tables)"
        )
    routes = data.get("route", [])
    upstreams = data.get("upstream", {})
    if not isinstance(routes, list) or not all(isinstance(r, dict) for r in routes):
        raise RouteError("expected [[route]] tables (an array of tables)", field="route")
    if not isinstance(upstreams, dict) or not all(isinstance(u, dict) for u in upstreams.values()):
        raise RouteError("expected [upstream.NAME] tables", field="upstream")
    return RouteTable(
        [_route(number, fields) for number, fields in enumerate(routes, 1)],
        [_upstream(name, fields) for name, fields in upstreams.items()],
    )


def load_routes(path: str | os.PathLike[str], *, ignore: Collection[str] = ()) -> RouteTable:
    """:func:`parse_routes` of a file; errors start with the file's path.

    Raises :class:`~kitpy.gateway.routes.RouteError` for an unreadable file too.
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RouteError(f"cannot read the route table ({exc})", source=str(path)) from None
    try:
        return parse_routes(text, ignore=ignore)
    except RouteError as exc:
        raise exc.from_source(str(path)) from None


def _document(text: str) -> Mapping[str, Any]:
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RouteError(f"not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise RouteError("expected a JSON object")
        return data
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RouteError(f"not valid TOML ({exc})") from None


def _route(number: int, fields: Mapping[str, Any]) -> Route:
    name = _label(fields)
    values: dict[str, Any] = {}
    for key, raw in fields.items():
        tp = _ROUTE_FIELDS.get(key)
        if tp is None:
            known = ", ".join(sorted(_ROUTE_FIELDS))
            raise RouteError.in_route(number, name, key, f"unknown field (known: {known})")
        try:
            values[key] = convert(raw, tp)
        except (ValueError, TypeError) as exc:
            raise RouteError.in_route(number, name, key, str(exc)) from None
    for key in _REQUIRED:
        if key not in values:
            raise RouteError.in_route(number, name, key, "missing (every route needs one)")
    return Route(**values)


def _label(fields: Mapping[str, Any]) -> str:
    """The route's name for error messages, as far as the raw fields tell it."""
    name, method, prefix = fields.get("name"), fields.get("method", "*"), fields.get("prefix")
    if isinstance(name, str) and name:
        return name
    if isinstance(method, str) and isinstance(prefix, str):
        return Route(method, prefix).name
    return ""


def _upstream(name: str, fields: Mapping[str, Any]) -> Upstream:
    values: dict[str, Any] = {}
    for key, raw in fields.items():
        tp = _UPSTREAM_FIELDS.get(key)
        if tp is None:
            known = ", ".join(sorted(_UPSTREAM_FIELDS))
            raise RouteError(f"unknown field (known: {known})", where=f"upstream {name}", field=key)
        try:
            values[key] = convert(raw, tp)
        except (ValueError, TypeError) as exc:
            raise RouteError(str(exc), where=f"upstream {name}", field=key) from None
    return Upstream(name, **values)
