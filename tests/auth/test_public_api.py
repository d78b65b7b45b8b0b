"""The auth packages export what we say, and ``kitpy.auth`` itself needs no third-party package."""

from __future__ import annotations

import json
import subprocess
import sys

import kitpy.auth
import kitpy.auth.jwt

PROBE = """
import json, sys
before = set(sys.modules)
import {module}
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def imported_by(module: str) -> set[str]:
    """Top-level packages that importing ``module`` loads, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    return {m.split(".")[0] for m in json.loads(out)}


def test_jwt_core_imports_no_transport() -> None:
    assert imported_by("kitpy.auth.jwt").isdisjoint({"aiohttp", "grpc", "multidict", "yarl"})


def test_kitpy_auth_imports_no_third_party_package() -> None:
    foreign = {m for m in imported_by("kitpy.auth") if m not in sys.stdlib_module_names}
    assert foreign == {"kitpy"}


def test_auth_public_names() -> None:
    assert set(kitpy.auth.__all__) == {
        "BASIC_CREDENTIALS", "BASIC_USER", "CLAIMS", "TOKEN", "AlgorithmNotAllowed",
        "BadSignature", "InvalidClaims", "MissingClaim", "TokenError", "TokenExpired",
        "TokenMalformed", "TokenMissing", "TokenNotYetValid", "UnknownKey", "WrongAudience",
        "WrongIssuer", "basic_auth", "basic_http_to_context", "bearer_token", "claim_values",
        "context_to_grpc", "context_to_http", "grpc_to_context", "http_to_context",
        "require_claim_values", "require_roles", "require_scopes",
    }  # fmt: skip
    assert set(kitpy.auth.jwt.__all__) == {
        "CLAIMS", "TOKEN", "JWTParser", "KeySet", "KeySource", "StaticKey", "TokenCache",
        "VerificationKey", "context_to_grpc", "context_to_http", "grpc_to_context",
        "http_to_context", "jwt_parser", "jwt_signer", "parse_jwks",
    }  # fmt: skip
    for module in (kitpy.auth, kitpy.auth.jwt):
        for name in module.__all__:
            assert hasattr(module, name), name
