"""Verification keys and key sources: what fits which algorithm, JWKS parsing."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kitpy.auth.jwt import KeySet, StaticKey, VerificationKey, parse_jwks
from tests.auth.jwks_server import jwk_for
from tests.auth.tokens import Algo


def test_algorithms_follow_the_key_type(algos: dict[str, Algo]) -> None:
    assert VerificationKey.from_key(algos["HS256"].public).algorithms == {"HS256"}
    assert VerificationKey.from_key(b"k" * 64).algorithms == {"HS256", "HS384", "HS512"}
    assert VerificationKey.from_key(algos["RS256"].public).algorithms == {
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    }  # fmt: skip
    assert VerificationKey.from_key(algos["ES256"].public).algorithms == {"ES256"}
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    assert VerificationKey.from_key(p384).algorithms == {"ES384"}
    assert VerificationKey.from_key(algos["EdDSA"].public).algorithms == {"EdDSA"}


def test_weak_and_wrong_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="an HMAC secret") as short:
        VerificationKey.from_key(b"short")
    assert str(short.value) == (
        "an HMAC secret for HS256 must be at least 32 bytes (HS256 32, HS384 48, HS512 64); "
        "this one has 5"
    )
    with pytest.raises(ValueError, match="an HMAC secret for HS512 must be at least 64 bytes"):
        VerificationKey.from_key(b"k" * 40, algorithm="HS512")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(ValueError, match="cannot verify"):
        VerificationKey.from_key(weak)
    with pytest.raises(ValueError, match="cannot verify ES256"):
        VerificationKey.from_key(b"k" * 32, algorithm="ES256")
    with pytest.raises(ValueError, match="none"):
        VerificationKey.from_key(b"k" * 32, algorithm="none")
    with pytest.raises(ValueError, match="empty"):
        VerificationKey.from_key(b"")
    with pytest.raises(TypeError):
        VerificationKey.from_key(42)


def test_pem_private_and_ssh_forms(algos: dict[str, Algo]) -> None:
    from cryptography.hazmat.primitives import serialization as s

    rsa_private = algos["RS256"].private
    pem_private = rsa_private.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption())
    ssh = rsa_private.public_key().public_bytes(s.Encoding.OpenSSH, s.PublicFormat.OpenSSH)
    numbers = rsa_private.public_key().public_numbers()
    for form in (pem_private, ssh, algos["RS256"].public_pem.decode()):
        key = VerificationKey.from_key(form).key
        assert isinstance(key, rsa.RSAPublicKey)
        assert key.public_numbers() == numbers


def test_pinned_algorithm(algos: dict[str, Algo]) -> None:
    assert StaticKey(algos["RS256"].public, algorithm="PS256").key.algorithms == {"PS256"}


def test_parse_jwks(algos: dict[str, Algo]) -> None:
    doc = {
        "keys": [
            jwk_for(algos["RS256"], "r"),
            jwk_for(algos["ES256"], "e"),
            {**jwk_for(algos["EdDSA"], "enc"), "use": "enc"},  # encryption key: skipped
            {"kty": "nope", "kid": "bad"},  # unusable: skipped
            "not a key",
        ]
    }
    keys = parse_jwks(json.dumps(doc))
    assert set(keys) == {"r", "e"}
    assert keys["r"].algorithms == {"RS256"}
    assert KeySet.from_jwks(doc).key_for("e") == keys["e"]


def test_single_unnamed_jwk_serves_tokens_without_kid(algos: dict[str, Algo]) -> None:
    jwk = jwk_for(algos["ES256"], "x")
    del jwk["kid"]
    assert set(parse_jwks({"keys": [jwk]})) == {None}


@pytest.mark.parametrize(
    "doc", ["[]", "{}", '{"keys": []}', '{"keys": "x"}', "nope", '{"keys": [{"kty": "zz"}]}']
)
def test_parse_jwks_rejects_garbage(doc: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 -- any ValueError (JSONDecodeError too)
        parse_jwks(doc)


def test_keyset_ignores_tokens_without_kid(algos: dict[str, Algo]) -> None:
    ks = KeySet({"a": algos["HS256"].public})
    assert ks.key_for(None) is None
    assert ks.key_for("a") is not None
    assert isinstance(jwt.PyJWK(jwk_for(algos["ES256"], "z")).key, ec.EllipticCurvePublicKey)
