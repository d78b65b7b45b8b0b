"""Authorisation helpers: scopes and roles from claims -> PermissionDenied."""

from __future__ import annotations

from typing import Any

import pytest

from kitpy import Code, Context, PermissionDenied, Unauthenticated
from kitpy.auth import CLAIMS, claim_values, require_roles, require_scopes


async def run(middleware: Any, claims: dict[str, Any] | None) -> list[str]:
    calls: list[str] = []

    async def endpoint(ctx: Context, request: str) -> None:
        calls.append(request)

    ctx = Context() if claims is None else Context().with_value(CLAIMS, claims)
    await middleware(endpoint)(ctx, "r")
    return calls


def test_claim_values() -> None:
    assert claim_values({"scope": "a  b"}, "scope") == {"a", "b"}
    assert claim_values({"roles": ["x", 3, "y"]}, "roles") == {"x", "y"}
    assert claim_values({"roles": {"x": 1}}, "roles") == frozenset()
    assert claim_values({}, "scope") == frozenset()


async def test_scopes_allowed_and_denied() -> None:
    mw = require_scopes("strings:read", "strings:write")
    assert await run(mw, {"scope": "strings:write strings:read other"}) == ["r"]
    with pytest.raises(PermissionDenied) as info:
        await run(mw, {"scope": "strings:read"})
    assert info.value.code is Code.PERMISSION_DENIED
    assert info.value.message == "requires scope: strings:read strings:write"
    assert info.value.headers == {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}


async def test_roles_from_a_list_claim() -> None:
    assert await run(require_roles("admin"), {"roles": ["admin"]}) == ["r"]
    with pytest.raises(PermissionDenied):
        await run(require_roles("admin"), {"roles": "user"})
    with pytest.raises(PermissionDenied):
        await run(require_roles("admin", claim="groups"), {"roles": ["admin"]})


async def test_no_claims_fails_closed() -> None:
    with pytest.raises(Unauthenticated):
        await run(require_scopes("a"), None)


def test_requires_something() -> None:
    with pytest.raises(ValueError, match="at least one"):
        require_scopes()
