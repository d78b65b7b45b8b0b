"""A minimal etcd v3 client over etcd's JSON gateway (``/v3/...``), on aiohttp.

Just what service discovery needs: prefix range, put, lease grant /
keepalive / revoke, and a prefix watch stream.  The gateway is served by
every etcd >= 3.4 on its client port; keys and values travel base64-encoded
and 64-bit integers as strings, which this module hides.

Errors come back as kitpy errors: a connection failure or timeout is
``Unavailable``; an error answered by etcd carries etcd's own gRPC status
code, so it maps straight onto :class:`~kitpy.errors.Code`
(``NotFound`` for an unknown lease, ...).
"""

from __future__ import annotations

from kitpy._extras import require

require("aiohttp", extra="etcd")

import base64
import json
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from kitpy.errors import Code, KitError, Unavailable, from_code

__all__ = ["EtcdClient", "KeyValue", "WatchBatch", "prefix_end"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` that makes ``[prefix, end)`` cover every key starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b"\0"  # etcd: "every key >= key"
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key as returned by a range or a watch event (``value`` is b"" on delete)."""

    key: bytes
    value: bytes
    mod_revision: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class WatchBatch:
    """One watch response: ``events`` as (``"PUT"`` | ``"DELETE"``, KeyValue), in etcd's order."""

    revision: int
    events: tuple[tuple[str, KeyValue], ...]


def _kv(raw: Mapping[str, Any]) -> KeyValue:
    return KeyValue(
        key=_unb64(raw.get("key")),
        value=_unb64(raw.get("value")),
        mod_revision=int(raw.get("mod_revision", 0)),
        lease=int(raw.get("lease", 0)),
    )


def _error(payload: Any, status: int) -> KitError:
    if isinstance(payload, Mapping):
        inner = payload.get("error")
        if isinstance(inner, Mapping):  # watch stream errors nest one level deeper
            payload = inner
        code = payload.get("code")
        message = payload.get("message") or payload.get("error") or f"HTTP {status}"
        if isinstance(code, int) and 0 < code <= max(Code):
            return from_code(Code(code), f"etcd: {message}")
    return Unavailable(f"etcd answered HTTP {status}")


class EtcdClient:
    """Talks to one etcd endpoint through its JSON gateway.

    ``url`` is ``http://host:port`` (``etcd://host:port`` is accepted too).
    Pass an ``aiohttp.ClientSession`` to share one; otherwise the client makes
    its own on first use and :meth:`close` closes it.  ``timeout`` bounds each
    unary request (seconds); a watch stream is only bounded when connecting.

    Example::

        async with EtcdClient("http://127.0.0.1:2379") as etcd:
            lease = await etcd.grant(10)
            await etcd.put(b"/services/users/10.0.0.7:8080", b"{...}", lease=lease)
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:2379",
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 5.0,
    ) -> None:
        if url.startswith("etcd://"):
            url = "http://" + url.removeprefix("etcd://")
        self.url = url.rstrip("/")
        self._base = self.url + "/v3"
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the session if this client created it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> EtcdClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        try:
            async with self._http().post(
                self._base + path, json=body, timeout=self._timeout
            ) as resp:
                payload = await resp.json(content_type=None)
                if resp.status != 200:
                    raise _error(payload, resp.status)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            raise Unavailable(f"etcd at {self.url}: {exc!r}") from exc
        if not isinstance(payload, dict):
            raise Unavailable(f"etcd at {self.url}: unexpected reply {payload!r:.200}")
        return payload

    # -- key-value -------------------------------------------------------------

    async def range_prefix(self, prefix: bytes) -> tuple[int, list[KeyValue]]:
        """Every key under ``prefix`` and the store revision they were read at."""
        reply = await self._call(
            "/kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}
        )
        revision = int(reply.get("header", {}).get("revision", 0))
        return revision, [_kv(raw) for raw in reply.get("kvs", ())]

    async def put(self, key: bytes, value: bytes, *, lease: int = 0) -> int:
        """Store ``value`` at ``key`` (attached to ``lease`` if non-zero); returns the revision."""
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        reply = await self._call("/kv/put", body)
        return int(reply.get("header", {}).get("revision", 0))

    async def delete(self, key: bytes) -> int:
        """Delete ``key``; returns how many keys were deleted (0 or 1)."""
        reply = await self._call("/kv/deleterange", {"key": _b64(key)})
        return int(reply.get("deleted", 0))

    # -- leases ----------------------------------------------------------------

    async def grant(self, ttl: int) -> int:
        """Create a lease of ``ttl`` seconds (etcd rounds tiny TTLs up); returns its id."""
        reply = await self._call("/lease/grant", {"TTL": str(ttl)})
        if reply.get("error"):
            raise _error(reply, 200)
        return int(reply["ID"])

    async def keepalive(self, lease: int) -> int:
        """Refresh ``lease``; returns its new TTL in seconds, 0 if it has expired."""
        reply = await self._call("/lease/keepalive", {"ID": str(lease)})
        result = reply.get("result", reply)
        return int(result.get("TTL", 0))

    async def revoke(self, lease: int) -> None:
        """Revoke ``lease``, deleting its keys at once; an unknown lease raises ``NotFound``."""
        await self._call("/lease/revoke", {"ID": str(lease)})

    # -- watch -----------------------------------------------------------------

    async def watch_prefix(
        self, prefix: bytes, *, start_revision: int
    ) -> AsyncGenerator[WatchBatch, None]:
        """Stream changes under ``prefix`` from ``start_revision`` on.

        Ends by raising: ``Unavailable`` when the stream drops (etcd stopped,
        connection lost), ``OutOfRange``-style errors from etcd, or
        ``KitError(Code.OUT_OF_RANGE)`` when the start revision was compacted
        (re-read the range and watch again).  Close it with ``aclose()``.
        """
        create = {
            "key": _b64(prefix),
            "range_end": _b64(prefix_end(prefix)),
            "start_revision": str(start_revision),
        }
        try:
            async with self._http().post(
                self._base + "/watch",
                json={"create_request": create},
                timeout=self._stream_timeout,
            ) as resp:
                if resp.status != 200:
                    raise _error(await resp.json(content_type=None), resp.status)
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            batch = self._watch_line(line)
                            if batch is not None:
                                yield batch
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            raise Unavailable(f"etcd watch at {self.url} dropped: {exc!r}") from exc
        raise Unavailable(f"etcd watch at {self.url} ended")

    def _watch_line(self, line: bytes) -> WatchBatch | None:
        message = json.loads(line)
        result = message.get("result") if isinstance(message, dict) else None
        if not isinstance(result, dict):
            raise _error(message, 200)
        compacted = int(result.get("compact_revision", 0))
        if compacted:
            raise KitError(Code.OUT_OF_RANGE, f"etcd: revision compacted below {compacted}")
        if result.get("canceled"):
            reason = result.get("cancel_reason") or "watch canceled by etcd"
            raise Unavailable(f"etcd: {reason}")
        events = result.get("events")
        if not events:
            return None  # "created" acknowledgement or progress notification
        revision = int(result.get("header", {}).get("revision", 0))
        return WatchBatch(
            revision,
            tuple((str(ev.get("type", "PUT")), _kv(ev.get("kv", {}))) for ev in events),
        )
