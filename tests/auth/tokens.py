"""Test keys for HS256/RS256/ES256/EdDSA and the hostile-token matrix shared by the auth tests.

Each :class:`Case` builds a token from an :class:`Algo` and names the
:class:`~kitpy.auth.errors.TokenError` subclass a parser built by
:func:`make_parser` must raise (None: the token is good).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kitpy.auth import errors

AUDIENCE = "stringsvc"
ISSUER = "https://issuer.test"
KID = "k1"
ALGORITHMS = ("HS256", "RS256", "ES256", "EdDSA")


@dataclass(frozen=True)
class Algo:
    """One algorithm's signing key, verification key and an unrelated key of the same kind."""

    name: str
    private: Any
    public: Any
    other_private: Any

    def sign(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = KID,
        key: Any = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        hdrs = {"kid": kid} if kid is not None else {}
        hdrs.update(headers or {})
        return jwt.encode(claims, key or self.private, algorithm=self.name, headers=hdrs or None)

    def forge_signed(self, header: dict[str, Any], claims: Any) -> str:
        """A correctly signed token with any header, even one pyjwt would not write."""
        algorithm = jwt.get_algorithm_by_name(self.name)
        key = algorithm.prepare_key(self.private)
        return forge(header, claims, lambda m: algorithm.sign(m, key))

    @property
    def public_pem(self) -> bytes:
        if isinstance(self.public, bytes):
            return self.public
        return self.public.public_bytes(  # type: ignore[no-any-return]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def make_algo(name: str) -> Algo:
    """Fresh keys for ``name`` (RSA 2048, EC P-256, Ed25519, 32-byte HMAC secrets)."""
    if name == "HS256":
        return Algo(name, b"s" * 32, b"s" * 32, b"o" * 32)
    if name == "RS256":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        other: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif name == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        other = ec.generate_private_key(ec.SECP256R1())
    elif name == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
        other = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(name)
    return Algo(name, private, private.public_key(), other)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(obj: Any) -> str:
    return b64(json.dumps(obj).encode())


def forge(header: Any, payload: Any, signature: Callable[[bytes], bytes] | bytes = b"") -> str:
    """A compact JWS built by hand: header and payload JSON, signature over them."""
    signing_input = f"{seg(header)}.{seg(payload)}"
    sig = signature(signing_input.encode()) if callable(signature) else signature
    return f"{signing_input}.{b64(sig)}"


def good_claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "ada",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now - 5,
        "exp": now + 600,
        "scope": "strings:read",
    }
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def _tamper_payload(token: str) -> str:
    header, _, sig = token.split(".")
    return f"{header}.{seg(good_claims(sub='mallory'))}.{sig}"


def _tamper_signature(token: str) -> str:
    head, _, sig = token.rpartition(".")
    mid = len(sig) // 2
    flipped = "A" if sig[mid] != "A" else "B"
    return f"{head}.{sig[:mid]}{flipped}{sig[mid + 1 :]}"


def _key_confusion(a: Algo) -> str:
    """HS256 over the public key bytes: what an attacker tries against an RS/ES/EdDSA service.

    Against an HS256 service the mirror image: an HMAC over the secret labelled RS256.
    """
    pem = a.public_pem
    alg = "RS256" if a.name == "HS256" else "HS256"
    return forge({"alg": alg, "kid": KID}, good_claims(), lambda m: _hmac(pem, m, "sha256"))


def _hmac(key: bytes, message: bytes, digest: str) -> bytes:
    return hmac.new(key, message, getattr(hashlib, digest)).digest()


def _other_algorithm(a: Algo) -> str:
    """Correctly shaped, signed with an algorithm outside the allow-list."""
    if a.name == "HS256":
        key = a.private
        return forge({"alg": "HS384", "kid": KID}, good_claims(), lambda m: _hmac(key, m, "sha384"))
    return jwt.encode(good_claims(), b"x" * 64, algorithm="HS512", headers={"kid": KID})


def _wrong_family(a: Algo) -> str:
    """An allowed-looking alg of another key type (RS256 to an HS256 service, HS256 to others)."""
    if a.name == "HS256":
        rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(good_claims(), rs, algorithm="RS256", headers={"kid": KID})
    return jwt.encode(good_claims(), b"y" * 32, algorithm="HS256", headers={"kid": KID})


def _unsigned(header: dict[str, Any]) -> Callable[[Algo], str]:
    return lambda a: forge(header, good_claims())


def _signed(**claims: Any) -> Callable[[Algo], str]:
    return lambda a: a.sign(good_claims(**claims))


def _edit(change: Callable[[str], str]) -> Callable[[Algo], str]:
    return lambda a: change(a.sign(good_claims()))


def _payload_not_object(a: Algo) -> str:
    return jwt.PyJWS().encode(b"[1]", a.private, algorithm=a.name, headers={"kid": KID})


def _header(obj_json: bytes) -> Callable[[Algo], str]:
    return lambda a: f"{b64(obj_json)}.{seg(good_claims())}.{b64(b'x' * 32)}"


def _exp_edge(offset: int) -> Callable[[Algo], str]:
    return lambda a: a.sign(good_claims(exp=int(time.time()) + offset))


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Algo], str]
    error: type[errors.TokenError] | None


E = errors
LATER = int(time.time()) + 3600

CASES: tuple[Case, ...] = (
    Case("valid", _signed(), None),
    Case("valid_within_leeway", _exp_edge(-2), None),
    Case("alg_none", _unsigned({"alg": "none", "typ": "JWT"}), E.AlgorithmNotAllowed),
    Case("alg_none_capitalised", _unsigned({"alg": "None"}), E.AlgorithmNotAllowed),
    Case("alg_missing", _unsigned({"typ": "JWT", "kid": KID}), E.AlgorithmNotAllowed),
    Case("key_confusion_hs256", _key_confusion, E.AlgorithmNotAllowed),
    Case("alg_not_allowed", _other_algorithm, E.AlgorithmNotAllowed),
    Case("alg_of_other_key_type", _wrong_family, E.AlgorithmNotAllowed),
    Case("expired", _exp_edge(-120), E.TokenExpired),
    Case("nbf_in_future", _signed(nbf=LATER), E.TokenNotYetValid),
    Case("iat_in_future", _signed(iat=LATER), E.TokenNotYetValid),
    Case("exp_not_a_number", _signed(exp="tomorrow"), E.InvalidClaims),
    Case("missing_exp", _signed(exp=None), E.MissingExpiry),
    Case("wrong_aud", _signed(aud="billing"), E.WrongAudience),
    Case("missing_aud", _signed(aud=None), E.WrongAudience),
    Case("wrong_iss", _signed(iss="https://evil.test"), E.WrongIssuer),
    Case("missing_iss", _signed(iss=None), E.WrongIssuer),
    Case("missing_required_sub", _signed(sub=None), E.MissingClaim),
    Case("tampered_payload", _edit(_tamper_payload), E.BadSignature),
    Case("tampered_signature", _edit(_tamper_signature), E.BadSignature),
    Case("empty_signature", _edit(lambda t: t.rpartition(".")[0] + "."), E.BadSignature),
    Case("signed_by_other_key", lambda a: a.sign(good_claims(), key=a.other_private),
         E.BadSignature),
    Case("truncated_two_segments", _edit(lambda t: t.rpartition(".")[0]), E.TokenMalformed),
    Case("extra_segment", _edit(lambda t: t + ".e30"), E.TokenMalformed),
    Case("garbage", lambda a: "!!!.@@@.###", E.TokenMalformed),
    Case("not_base64", lambda a: "eyJ*.e30.e30", E.TokenMalformed),
    Case("header_not_object", _header(b"[1, 2]"), E.TokenMalformed),
    Case("header_not_json", _header(b"{nope"), E.TokenMalformed),
    Case("payload_not_object", _payload_not_object, E.TokenMalformed),
    Case("unknown_kid", lambda a: a.sign(good_claims(), kid="k-unknown"), E.UnknownKey),
    Case("kid_not_a_string", lambda a: a.forge_signed({"alg": a.name, "kid": 7}, good_claims()),
         E.TokenMalformed),
    Case("one_megabyte", lambda a: "a" * (1 << 20), E.TokenMalformed),
)  # fmt: skip
CASE_IDS = [c.id for c in CASES]
