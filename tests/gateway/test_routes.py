"""The route table: matching rules, validation errors, the TOML/JSON format, upstream instancers.

The full example of docs/gateway.md is this file's parsing input, read from the page itself.
"""

from __future__ import annotations

import json
import random
import re
import tomllib
from pathlib import Path
from typing import Any

import dns.asyncresolver
import pytest

from kitpy.gateway import (
    Route,
    RouteError,
    RouteTable,
    Upstream,
    instancer_for,
    load_routes,
    parse_routes,
)
from kitpy.gateway.route_config import _ROUTE_FIELDS
from kitpy.sd import FixedInstancer
from kitpy.sd.dnssrv import DNSSRVInstancer
from kitpy.sd.etcd import EtcdClient, EtcdInstancer

DOCS = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"
SVC = Upstream("svc", addresses=("127.0.0.1:8081",))


def table(*routes: Route, upstreams: tuple[Upstream, ...] = (SVC,)) -> RouteTable:
    return RouteTable(routes, upstreams)


def docs_example() -> str:
    """The ```toml block of the "Route table" section of docs/gateway.md."""
    section = DOCS.read_text().split("## Route table", 1)[1]
    match = re.search(r"^```toml\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
    assert match is not None, "docs/gateway.md shows no TOML example"
    return match.group(1)


# -- matching ---------------------------------------------------------------------------------


def test_the_longest_matching_prefix_wins() -> None:
    routes = table(
        Route(prefix="/", upstream="svc", name="root"),
        Route(prefix="/api", upstream="svc", name="api"),
        Route(prefix="/api/users", upstream="svc", name="users"),
        Route(prefix="/api/users/admins", upstream="svc", name="admins"),
    )

    def name(path: str) -> str | None:
        route = routes.match("GET", path)
        return None if route is None else route.name

    assert name("/api/users/admins/7") == "admins"
    assert name("/api/users/7") == "users"
    assert name("/api/orders") == "api"
    assert name("/other") == "root"
    assert name("/") == "root"


def test_a_prefix_matches_only_at_a_segment_boundary() -> None:
    routes = table(Route(prefix="/api", upstream="svc"))
    for path in ("/api", "/api/", "/api/x", "/api/x/y/z", "/api//x"):
        assert routes.match("GET", path) is not None, path
    for path in ("/apix", "/apix/y", "/ap", "/", "", "api", "/other/api"):
        assert routes.match("GET", path) is None, path


def test_a_trailing_slash_in_a_prefix_is_the_same_prefix() -> None:
    route = Route(prefix="/api/", upstream="svc")
    assert route.prefix == "/api"
    assert table(route).match("GET", "/api") is route
    with pytest.raises(RouteError, match="already routed by route #1"):
        table(route, Route(prefix="/api", upstream="svc", name="again"))


def test_an_exact_method_beats_star_on_the_same_prefix_but_not_a_longer_one() -> None:
    star = Route("*", "/api", upstream="svc")
    get = Route("GET", "/api", upstream="svc")
    deeper = Route("*", "/api/users", upstream="svc")
    routes = table(star, get, deeper)
    assert routes.match("GET", "/api/x") is get
    assert routes.match("POST", "/api/x") is star
    assert routes.match("HEAD", "/api/x") is star  # HEAD is not GET
    assert routes.match("GET", "/api/users/7") is deeper  # the longer prefix first


def test_a_method_with_no_route_falls_back_to_a_shorter_prefix_or_none() -> None:
    post = Route("POST", "/api/users", upstream="svc")
    get = Route("GET", "/api", upstream="svc")
    routes = table(post, get)
    assert routes.match("POST", "/api/users") is post
    assert routes.match("GET", "/api/users") is get
    assert routes.match("DELETE", "/api/users") is None


def test_match_agrees_with_a_plain_scan_on_random_tables() -> None:
    rng = random.Random(21)
    segments = ["a", "ab", "b", "api", "x"]
    for _ in range(200):
        routes: dict[tuple[str, str], Route] = {}
        for _ in range(rng.randint(1, 8)):
            prefix = "/" + "/".join(rng.choices(segments, k=rng.randint(0, 3)))
            method = rng.choice(["*", "GET", "POST"])
            routes.setdefault((method, prefix), Route(method, prefix, upstream="svc"))
        built = table(*routes.values())
        for _ in range(20):
            path = "/" + "/".join(rng.choices(segments, k=rng.randint(0, 5)))
            path += rng.choice(["", "/", "z"])
            method = rng.choice(["GET", "POST", "PUT"])
            assert built.match(method, path) is _scan(list(routes.values()), method, path)


def _scan(routes: list[Route], method: str, path: str) -> Route | None:
    """The rules, written the slow and obvious way."""
    fits = [
        r
        for r in routes
        if r.method in (method, "*")
        and (r.prefix == "/" or path == r.prefix or path.startswith(r.prefix + "/"))
    ]
    if not fits:
        return None
    return max(fits, key=lambda r: (len(r.prefix), r.method != "*"))


def test_strip_prefix_gives_the_upstream_path() -> None:
    strip = Route(prefix="/api/users", upstream="svc", strip_prefix=True)
    assert strip.upstream_path("/api/users/7") == "/7"
    assert strip.upstream_path("/api/users") == "/"
    assert strip.upstream_path("/api/users/") == "/"
    assert Route(prefix="/api", upstream="svc").upstream_path("/api/x") == "/api/x"
    assert Route(prefix="/", upstream="svc", strip_prefix=True).upstream_path("/x") == "/x"


# -- validation -------------------------------------------------------------------------------

BAD_FIELDS: list[tuple[dict[str, Any], str, str]] = [
    ({"method": "FETCH"}, "method", "expected * or one of DELETE, GET, HEAD"),
    ({"prefix": "api"}, "prefix", "must start with /, got 'api'"),
    ({"prefix": "/a?b"}, "prefix", "expected a plain path"),
    ({"prefix": "/a b"}, "prefix", "expected a plain path"),
    ({"prefix": "/a//b"}, "prefix", "expected a plain path"),
    ({"upstream": ""}, "upstream", "missing"),
    ({"upstream": "nope"}, "upstream", "no upstream named 'nope' (upstreams: svc)"),
    ({"kind": "grpc"}, "kind", "expected one of http, connect, got 'grpc'"),
    ({"timeout": 0.0}, "timeout", "must be > 0 seconds, got 0.0"),
    ({"timeout": -1.0}, "timeout", "must be > 0 seconds"),
    ({"timeout": float("inf")}, "timeout", "must be > 0 seconds"),
    ({"retries": -1}, "retries", "must be a whole number >= 0, got -1"),
    ({"max_body_size": 0}, "max_body_size", "must be > 0 bytes, got 0"),
    ({"auth": "basic"}, "auth", "expected one of none, jwt, got 'basic'"),
    ({"rate_limit": 0.0}, "rate_limit", "must be > 0 requests a second"),
    ({"cors_origins": ("app.example.com",)}, "cors_origins", "got 'app.example.com'"),
    ({"cors_origins": ("https://a.example/path",)}, "cors_origins", "expected * or an origin"),
]


@pytest.mark.parametrize(("override", "field", "problem"), BAD_FIELDS)
def test_each_bad_field_is_an_error_naming_the_route_and_the_field(
    override: dict[str, Any], field: str, problem: str
) -> None:
    fields: dict[str, Any] = {"method": "GET", "prefix": "/x", "upstream": "svc", "name": "bad"}
    fields.update(override)
    with pytest.raises(RouteError) as caught:
        table(Route(prefix="/ok", upstream="svc"), Route(**fields))
    assert (caught.value.where, caught.value.field) == ("route #2 (bad)", field)
    assert str(caught.value).startswith(f"route #2 (bad): {field}: ")
    assert problem in str(caught.value)


def test_good_values_of_every_field_pass() -> None:
    route = Route(
        "post", "/x/", upstream="svc", kind="connect", timeout=0.5, retries=0, strip_prefix=True,
        max_body_size=1, auth="jwt", rate_limit=0.5, cors_origins=("*", "http://127.0.0.1:3000"),
    )  # fmt: skip
    assert table(route).routes == (route,)
    assert route.name == "POST /x"


def test_table_level_errors_name_what_clashes() -> None:
    first = Route("GET", "/x", upstream="svc")
    with pytest.raises(RouteError) as caught:
        table(first, Route("GET", "/x/", upstream="svc", name="again"))
    assert str(caught.value) == "route #2 (again): prefix: GET /x is already routed by route #1"
    with pytest.raises(RouteError) as caught:
        table(first, Route("POST", "/y", upstream="svc", name="GET /x"))
    assert str(caught.value) == "route #2 (GET /x): name: 'GET /x' is also the name of route #1"
    with pytest.raises(RouteError, match=r"^the table has no routes$"):
        table()
    with pytest.raises(RouteError, match=r"^upstream svc: defined twice$"):
        table(first, upstreams=(SVC, SVC))


@pytest.mark.parametrize(
    ("upstream", "message"),
    [
        (
            Upstream("u"),
            "upstream u: give exactly one of addresses, etcd_prefix, dns_srv (got none)",
        ),
        (
            Upstream("u", addresses=("127.0.0.1:1",), etcd_prefix="/s/"),
            "upstream u: give exactly one of addresses, etcd_prefix, dns_srv "
            "(got addresses and etcd_prefix)",
        ),
        (Upstream("u", addresses=("nowhere",)), "upstream u: addresses: expected host:port"),
        (Upstream("my svc", dns_srv="_x._tcp.y"), "upstream my svc: name: expected a name"),
    ],
)
def test_an_unusable_upstream_is_an_error_naming_it(upstream: Upstream, message: str) -> None:
    with pytest.raises(RouteError) as caught:
        table(Route(prefix="/", upstream=upstream.name), upstreams=(upstream,))
    assert str(caught.value).startswith(message)


def test_tables_with_the_same_content_are_equal() -> None:
    one = table(Route(prefix="/a", upstream="svc"))
    assert one == table(Route(prefix="/a/", upstream="svc"))
    assert hash(one) == hash(table(Route(prefix="/a", upstream="svc")))
    assert one != table(Route(prefix="/a", upstream="svc", timeout=1.0))


# -- the file format ---------------------------------------------------------------------------


def test_the_docs_example_parses_into_the_table_it_describes() -> None:
    routes = parse_routes(docs_example())
    assert [r.name for r in routes.routes] == [
        "* /uppercase", "count", "users", "users-read", "stringsvc-connect",
    ]  # fmt: skip
    assert dict(routes.upstreams) == {
        "stringsvc": Upstream("stringsvc", addresses=("127.0.0.1:8081", "127.0.0.1:8082")),
        "stringsvc-grpc": Upstream("stringsvc-grpc", etcd_prefix="/services/stringsvc-grpc/"),
        "users": Upstream("users", dns_srv="_http._tcp.users.internal"),
    }
    count = routes.match("POST", "/count")
    assert count == Route(
        "POST", "/count", upstream="stringsvc", name="count", timeout=0.5, retries=0,
        max_body_size=64 * 1024, rate_limit=50.0, cors_origins=("https://app.example.com",),
    )  # fmt: skip
    assert routes.match("GET", "/count") is None
    users = routes.match("DELETE", "/api/users/7")
    assert users is not None
    assert (users.name, users.auth, users.strip_prefix) == ("users", "jwt", True)
    read = routes.match("GET", "/api/users/7")
    assert read is not None
    assert (read.name, read.retries, read.auth) == ("users-read", 3, "none")
    assert read.upstream_path("/api/users/7") == "/7"
    connect = routes.match("POST", "/stringsvc.v1.StringService/Uppercase")
    assert connect is not None
    assert (connect.kind, connect.timeout) == ("connect", 1.0)
    assert routes.upstream_of(connect).etcd_prefix == "/services/stringsvc-grpc/"
    default = routes.match("PUT", "/uppercase")
    assert default is not None
    assert (default.timeout, default.retries, default.max_body_size) == (30.0, 2, 1024 * 1024)


def test_json_with_the_same_shape_reads_the_same_table() -> None:
    text = docs_example()
    assert parse_routes(json.dumps(tomllib.loads(text))) == parse_routes(text)
    assert parse_routes(tomllib.loads(text)) == parse_routes(text)


def test_the_reader_knows_every_route_field() -> None:
    assert set(_ROUTE_FIELDS) == set(Route.__dataclass_fields__)


GOOD = '[upstream.svc]\naddresses = ["127.0.0.1:1"]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD + '[[route]]\nprefix = "/api"\nupstream = "svc"\ntimout = "2s"\n',
            "route #1 (* /api): timout: unknown field (known: auth, cors_origins, ",
        ),
        (
            GOOD + '[[route]]\nmethod = "get"\nprefix = "/api"\nupstream = "svc"\n'
            'timeout = "2 seconds"\n',
            "route #1 (GET /api): timeout: expected a duration such as 500ms",
        ),
        (
            GOOD + '[[route]]\nname = "big"\nprefix = "/api"\nupstream = "svc"\n'
            'max_body_size = "lots"\n',
            "route #1 (big): max_body_size: expected a size such as 512, 64KiB",
        ),
        (
            GOOD + '[[route]]\nprefix = "/a"\nupstream = "svc"\n[[route]]\nupstream = "svc"\n',
            "route #2: prefix: missing (every route needs one)",
        ),
        (
            GOOD + '[[route]]\nprefix = "/a"\nupstream = "svc"\nkind = "grpc"\n',
            "route #1 (* /a): kind: expected one of http, connect, got 'grpc'",
        ),
        (
            GOOD + '[[routes]]\nprefix = "/a"\nupstream = "svc"\n',
            "unknown top-level key 'routes' (expected [[route]] and [upstream.NAME] tables)",
        ),
        (
            '[upstream.svc]\nadress = "127.0.0.1:1"\n',
            "upstream svc: adress: unknown field (known: addresses, descriptor_set, dns_srv, "
            "etcd_prefix, grpc_address_key)",
        ),
        ('[[route]\nprefix = "/a"', "not valid TOML ("),
        ('{"route": [', "not valid JSON ("),
        ("", "the table has no routes"),
    ],
)
def test_a_bad_document_is_an_error_saying_where(text: str, message: str) -> None:
    with pytest.raises(RouteError) as caught:
        parse_routes(text)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_other_top_level_tables_are_skipped_only_when_named() -> None:
    text = (
        '[gateway]\nlisten = "127.0.0.1:8080"\n'
        + GOOD
        + '[[route]]\nprefix = "/"\nupstream = "svc"\n'
    )
    with pytest.raises(RouteError, match="unknown top-level key 'gateway'"):
        parse_routes(text)
    assert parse_routes(text, ignore={"gateway"}).match("GET", "/x") is not None


def test_load_routes_names_the_file_in_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD + '[[route]]\nprefix = "/a"\nupstream = "svc"\nretries = -2\n')
    with pytest.raises(RouteError) as caught:
        load_routes(path)
    assert str(caught.value) == (
        f"{path}: route #1 (* /a): retries: must be a whole number >= 0, got -2"
    )
    assert caught.value.source == str(path)
    with pytest.raises(RouteError, match="cannot read the route table"):
        load_routes(tmp_path / "missing.toml")
    path.write_text(GOOD + '[[route]]\nprefix = "/a"\nupstream = "svc"\n')
    assert load_routes(path).match("GET", "/a/b") is not None


# -- upstream instancers ------------------------------------------------------------------------


async def test_instancer_for_builds_each_kind_from_the_callers_clients() -> None:
    fixed = instancer_for(Upstream("a", addresses=("127.0.0.1:2", "127.0.0.1:1")))
    assert isinstance(fixed, FixedInstancer)
    assert [i.address for i in fixed.instances] == ["127.0.0.1:1", "127.0.0.1:2"]

    on_etcd = Upstream("b", etcd_prefix="/services/b/")
    with pytest.raises(ValueError, match="upstream b is found under etcd prefix /services/b/"):
        instancer_for(on_etcd)
    async with EtcdClient("http://127.0.0.1:9") as etcd:
        instancer = instancer_for(on_etcd, etcd=etcd)
        assert isinstance(instancer, EtcdInstancer)
        assert instancer.prefix == "/services/b/"

    on_dns = Upstream("c", dns_srv="_http._tcp.c.internal")
    with pytest.raises(ValueError, match="pass resolver="):
        instancer_for(on_dns)
    srv = instancer_for(on_dns, resolver=dns.asyncresolver.Resolver(configure=False))
    assert isinstance(srv, DNSSRVInstancer)
    assert srv.name == "_http._tcp.c.internal"
