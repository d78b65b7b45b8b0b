"""LiveRouteTable: the table in use follows a real file and a real etcd key; bad tables never land.

Files live in tmp_path and are replaced atomically (write, then rename), as docs/gateway.md
advises; etcd is the session's real server (``etcd_server``). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from pathlib import Path

import pytest

from kitpy.config import Rejection
from kitpy.gateway import (
    LiveRouteTable,
    RouteError,
    RouteTable,
    Upstream,
    instancer_for,
    parse_routes,
)
from kitpy.metrics.memory import MemoryCounter
from kitpy.sd import BackgroundInstancer, Instance
from kitpy.sd.etcd import EtcdClient, EtcdRegistrar
from tests.conftest import Etcd
from tests.servers import free_port
from tests.waiting import until

ROUTES = """
[upstream.svc]
addresses = ["127.0.0.1:8081"]

[[route]]
prefix = "{prefix}"
upstream = "svc"
timeout = "{timeout}"
"""


def routes(prefix: str, timeout: str = "2s") -> str:
    return ROUTES.format(prefix=prefix, timeout=timeout)


def replace(path: Path, text: str) -> None:
    """Write ``path`` atomically, so a poll never reads half of it."""
    new = path.with_suffix(".new")
    new.write_text(text)
    os.replace(new, path)


def serves(live: LiveRouteTable, prefix: str) -> bool:
    route = live.current.match("GET", prefix)
    return route is not None and route.prefix == prefix


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "kitpy.gateway" and r.levelno == logging.ERROR
    ]


# -- a file ------------------------------------------------------------------------------------


async def test_a_changed_file_swaps_the_whole_table_within_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(routes("/v1"))
    live = LiveRouteTable(path=path, interval=0.05)
    first = live.current
    seen: list[RouteTable] = []
    live.subscribe(seen.append)
    async with live:
        assert serves(live, "/v1")
        replace(path, routes("/v2"))
        started = time.monotonic()
        await until(lambda: serves(live, "/v2"))
        assert time.monotonic() - started < 2.0  # about one interval, with room for a busy CI
        assert live.current.match("GET", "/v1") is None  # the whole table, not a merge
        assert seen == [live.current]
        assert serves_first(first)  # the old table itself never changed


def serves_first(table: RouteTable) -> bool:
    route = table.match("GET", "/v1/x")
    return route is not None and route.prefix == "/v1"


async def test_an_invalid_change_is_rejected_with_one_log_line_and_the_old_table_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kitpy.gateway")
    path = tmp_path / "routes.toml"
    path.write_text(routes("/v1"))
    counter = MemoryCounter("rejections", labelnames=("setting",))
    async with LiveRouteTable(path=path, interval=0.05, rejections=counter) as live:
        before = live.current
        replace(path, routes("/v2", timeout="0s"))
        await until(lambda: bool(errors(caplog)))
        await asyncio.sleep(0.2)  # a few more polls: still one line, still the old table
        assert errors(caplog) == [
            f"route table from {path} rejected, keeping the current one: "
            "route #1 (* /v2): timeout: must be > 0 seconds, got 0.0"
        ]
        assert live.current is before
        assert counter.value(setting="routes") == 1

        replace(path, routes("/v1") + "[[route]\n")  # not TOML at all
        await until(lambda: len(errors(caplog)) == 2)
        assert "not valid TOML (" in errors(caplog)[1]
        assert live.current is before

        replace(path, routes("/v3"))  # a good table after bad ones is taken
        await until(lambda: serves(live, "/v3"))


async def test_a_missing_file_keeps_the_table_until_the_file_is_back(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(routes("/v1"))
    problems: list[str] = []
    async with LiveRouteTable(path=path, interval=0.05, on_problem=problems.append) as live:
        path.unlink()
        await until(lambda: bool(problems))
        assert problems[0].startswith(f"{path}: cannot read it (")
        assert problems[0].endswith("keeping the current route table")
        assert serves(live, "/v1")
        path.write_text(routes("/v2"))
        await until(lambda: serves(live, "/v2"))
        assert len(problems) == 1  # reported once, not at every poll


def test_the_gateway_does_not_start_on_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(routes("api"))
    with pytest.raises(RouteError) as caught:
        LiveRouteTable(path=path)
    assert str(caught.value) == f"{path}: route #1 (* api): prefix: must start with /, got 'api'"


async def test_a_given_table_stays_when_the_file_is_invalid_at_start(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(routes("/v1", timeout="-"))
    rejected: list[Rejection] = []
    table = _table("/v0")
    async with LiveRouteTable(table, path=path, on_reject=rejected.append) as live:
        assert live.current is table
        assert [str(r.reason) for r in rejected] == [
            "route #1 (* /v1): timeout: expected a duration such as 500ms, 2s, 1m or 1h30m, got '-'"
        ]
        assert rejected[0].source == str(path)


async def test_a_subscriber_may_refuse_a_table() -> None:
    rejected: list[Rejection] = []
    live = LiveRouteTable(_table("/v1"), on_reject=rejected.append)
    seen: list[str] = []

    def refuse_v2(table: RouteTable) -> None:
        seen.append(table.routes[0].prefix)
        if table.routes[0].prefix == "/v2":
            raise ValueError("cannot reach upstream svc")

    live.subscribe(refuse_v2)
    assert live.set(routes("/v2"), source="admin") is False
    assert serves(live, "/v1")
    assert seen == ["/v2", "/v1"]  # told of the new table, then of the old one again
    assert [str(r.reason) for r in rejected] == ["cannot reach upstream svc"]
    assert live.set(routes("/v3")) is True
    assert serves(live, "/v3")


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="give a table, a path"):
        LiveRouteTable()
    with pytest.raises(ValueError, match="give etcd= and key= together"):
        LiveRouteTable(_table("/v1"), key="/config/gateway/routes")
    with pytest.raises(ValueError, match="interval must be > 0"):
        LiveRouteTable(_table("/v1"), path=tmp_path / "x.toml", interval=0)


def _table(prefix: str) -> RouteTable:
    return parse_routes(routes(prefix))


# -- etcd --------------------------------------------------------------------------------------


@pytest.mark.servers
async def test_an_etcd_key_overrides_the_file_and_its_deletion_falls_back_to_the_file(
    etcd_server: Etcd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kitpy.gateway")
    key = f"/kitpy-test/{uuid.uuid4().hex}/gateway/routes"
    path = tmp_path / "routes.toml"
    path.write_text(routes("/file1"))
    async with EtcdClient(etcd_server.url, timeout=2.0) as etcd:
        live = LiveRouteTable(path=path, interval=0.05, etcd=etcd, key=key)
        async with live:
            assert serves(live, "/file1")  # no key yet: the file's table

            await etcd.put(key.encode(), routes("/etcd1").encode())
            await until(lambda: serves(live, "/etcd1"))

            replace(path, routes("/file2"))  # the file changes under the override...
            await asyncio.sleep(0.3)
            assert serves(live, "/etcd1")  # ...and the etcd table stays in use

            await etcd.put(key.encode(), routes("/etcd2", timeout="soon").encode())
            await until(lambda: bool(errors(caplog)))
            assert errors(caplog) == [
                f"route table from etcd key {key} rejected, keeping the current one: "
                "route #1 (* /etcd2): timeout: expected a duration such as 500ms, 2s, 1m or "
                "1h30m, got 'soon'"
            ]
            assert serves(live, "/etcd1")

            await etcd.delete(key.encode())  # deleted: the file's latest good table
            await until(lambda: serves(live, "/file2"))

            await etcd.put(key.encode(), b'{"route": [{"prefix": "/json", "upstream": "svc"}],'
                           b' "upstream": {"svc": {"addresses": ["127.0.0.1:1"]}}}')  # fmt: skip
            await until(lambda: serves(live, "/json"))
            await etcd.put(key.encode(), b"  \n")  # empty: no override either
            await until(lambda: serves(live, "/file2"))
        assert len(errors(caplog)) == 1


@pytest.mark.servers
async def test_a_key_already_in_etcd_is_in_use_when_start_returns(
    etcd_server: Etcd, tmp_path: Path
) -> None:
    key = f"/kitpy-test/{uuid.uuid4().hex}/gateway/routes"
    async with EtcdClient(etcd_server.url, timeout=2.0) as etcd:
        await etcd.put(key.encode(), routes("/etcd").encode())
        async with LiveRouteTable(_table("/static"), etcd=etcd, key=key) as live:
            assert serves(live, "/etcd")
            await etcd.delete(key.encode())  # no file: back to the table given
            await until(lambda: serves(live, "/static"))


async def test_an_unreachable_etcd_delays_the_start_by_first_read_at_most(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(routes("/file"))
    problems: list[str] = []
    async with EtcdClient(f"http://127.0.0.1:{free_port()}", timeout=0.5) as etcd:
        live = LiveRouteTable(
            path=path, etcd=etcd, key="/gateway/routes", first_read=0.3, on_problem=problems.append
        )
        started = time.monotonic()
        async with live:
            assert time.monotonic() - started < 2.0
            assert serves(live, "/file")
            assert (
                "etcd key /gateway/routes: not read within 0.3s; serving the file's route table "
                "until it is"
            ) in problems


@pytest.mark.servers
async def test_an_etcd_prefix_upstream_finds_the_instances_registered_there(
    etcd_server: Etcd,
) -> None:
    prefix = f"/kitpy-test/{uuid.uuid4().hex}/services/svc/"
    async with EtcdClient(etcd_server.url, timeout=2.0) as etcd:
        registrar = EtcdRegistrar(etcd, prefix, Instance("127.0.0.1:8081"), ttl=5)
        async with registrar:
            instancer = instancer_for(Upstream("svc", etcd_prefix=prefix), etcd=etcd)
            assert isinstance(instancer, BackgroundInstancer)
            async with instancer, asyncio.timeout(5):
                async for event in instancer.subscribe():
                    if event.instances:
                        break
            assert [i.address for i in event.instances] == ["127.0.0.1:8081"]
