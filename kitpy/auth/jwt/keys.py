"""Verification keys and the sources the JWT parser takes them from.

A :class:`VerificationKey` is a ready-to-use public key (or HMAC secret) plus
the algorithms it may verify.  Which algorithms a key fits follows from its
type (an RSA key never verifies an ``HS256`` token, which is what defeats key
confusion), narrowed by a JWK's ``alg`` and by pyjwt's minimum key lengths
(a key too short for an algorithm does not fit it).

A :class:`KeySource` maps a token's ``kid`` to a key:

* :class:`StaticKey` -- one key for every token, whatever its ``kid``.
* :class:`KeySet` -- keys by ``kid``, for rotation (publish the new key, start
  signing with it, drop the old one when its tokens have expired).
* :class:`~kitpy.auth.jwt.jwks.JWKS` -- keys fetched from a JWKS URL.

Keys are parsed once, when the source is built: PEM text, SSH public keys, X.509
certificates, private keys (their public half is used), ``jwt.PyJWK`` and
cryptography key objects are accepted; any other ``str``/``bytes`` is an HMAC
secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from kitpy._extras import require

require("jwt", "cryptography", extra="jwt")

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from kitpy.context import Context

__all__ = [
    "KeySet",
    "KeySource",
    "StaticKey",
    "VerificationKey",
    "parse_jwks",
]

_HMAC = ("HS256", "HS384", "HS512")
_RSA = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_BY_CURVE = {
    "secp256r1": ("ES256",),
    "secp384r1": ("ES384",),
    "secp521r1": ("ES512", "ES521"),
    "secp256k1": ("ES256K",),
}
_PRIVATE = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey,
            ed448.Ed448PrivateKey)  # fmt: skip


def _load(key: Any) -> Any:
    """Turn key material into bytes (HMAC) or a cryptography public key object."""
    if isinstance(key, jwt.PyJWK):
        key = key.key
    if isinstance(key, str):
        key = key.encode("utf-8")
    if isinstance(key, bytes):
        text = key.strip()
        if text.startswith(b"-----BEGIN"):
            first_line = text.split(b"\n", 1)[0]
            if b"CERTIFICATE" in first_line:
                return x509.load_pem_x509_certificate(text).public_key()
            if b"PRIVATE KEY" in first_line:
                key = serialization.load_pem_private_key(text, password=None)
            else:
                return serialization.load_pem_public_key(text)
        elif text.startswith((b"ssh-", b"ecdsa-sha2-")):
            return serialization.load_ssh_public_key(text)
        else:
            if not key:
                raise ValueError("an HMAC secret must not be empty")
            return key
    if isinstance(key, _PRIVATE):
        return key.public_key()
    return key


def _family(key: Any) -> tuple[str, ...]:
    if isinstance(key, bytes):
        return _HMAC
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _EC_BY_CURVE.get(key.curve.name, ())
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return ("EdDSA",)
    raise TypeError(f"unsupported key type: {type(key).__name__}")


def _strong_enough(algorithm: str, key: Any) -> bool:
    check = getattr(jwt.get_algorithm_by_name(algorithm), "check_key_length", None)
    return check is None or check(key) is None


_HMAC_MINIMUM = {"HS256": 32, "HS384": 48, "HS512": 64}  # bytes: the hash's output size


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A prepared verification key and the algorithms it may verify.

    Build one with :meth:`from_key`; ``algorithms`` is never empty.
    """

    key: Any
    algorithms: frozenset[str]

    @classmethod
    def from_key(cls, key: Any, *, algorithm: str | None = None) -> VerificationKey:
        """Parse ``key`` and work out the algorithms it fits.

        ``algorithm`` (or a ``PyJWK``'s ``alg``) pins the key to one algorithm.
        Raises ``ValueError`` if the key fits no algorithm (wrong type for the
        pinned one, or too short, e.g. an HMAC secret under 32 bytes).
        """
        if algorithm is None and isinstance(key, jwt.PyJWK):
            algorithm = key.algorithm_name
        if algorithm == "none":
            raise ValueError('the "none" algorithm is never accepted')
        loaded = _load(key)
        family = _family(loaded)
        candidates = family if algorithm is None else tuple(a for a in family if a == algorithm)
        fits = frozenset(a for a in candidates if _strong_enough(a, loaded))
        if not fits and isinstance(loaded, bytes) and candidates:
            minimum = min(_HMAC_MINIMUM.get(a, 0) for a in candidates)
            raise ValueError(
                f"an HMAC secret for {algorithm or 'HS256'} must be at least {minimum} bytes "
                f"(HS256 32, HS384 48, HS512 64); this one has {len(loaded)}"
            )
        if not fits:
            wanted = algorithm or "/".join(family) or "any algorithm"
            raise ValueError(
                f"this {type(loaded).__name__} key cannot verify {wanted} "
                "(wrong key type, or shorter than the algorithm's minimum)"
            )
        return cls(loaded, fits)


@runtime_checkable
class KeySource(Protocol):
    """Where the JWT parser finds the key for a token.

    :meth:`key_for` is called on every uncached verification and must be fast.
    When it returns None, the parser awaits :meth:`refresh` once and asks again;
    a second None means the ``kid`` is unknown.  ``refresh`` may raise a
    :class:`~kitpy.errors.KitError` (e.g. UNAVAILABLE when keys cannot be fetched).
    """

    def key_for(self, kid: str | None) -> VerificationKey | None:
        """The key for ``kid`` (None when the token has no ``kid``), or None."""
        ...

    async def refresh(self, ctx: Context) -> None:
        """Try to learn new keys (bounded by ``ctx``'s deadline); may do nothing."""
        ...


class StaticKey:
    """One key for every token, whatever its ``kid``.

    Example::

        StaticKey(b"a-secret-of-at-least-32-bytes....")
        StaticKey(public_pem, algorithm="RS256")
    """

    __slots__ = ("key",)

    def __init__(self, key: Any, *, algorithm: str | None = None) -> None:
        self.key = VerificationKey.from_key(key, algorithm=algorithm)

    def key_for(self, kid: str | None) -> VerificationKey | None:
        """Always the one key."""
        return self.key

    async def refresh(self, ctx: Context) -> None:
        """Nothing to refresh."""


class KeySet:
    """Keys by ``kid``, for rotation.  Tokens without a ``kid`` match no key.

    Values are anything :meth:`VerificationKey.from_key` accepts, or a ready
    :class:`VerificationKey` (e.g. one pinned to an algorithm).

    Example::

        KeySet({"2024-06": old_public_key, "2024-12": new_public_key})
    """

    __slots__ = ("keys",)

    def __init__(self, keys: Mapping[str, Any]) -> None:
        self.keys: Mapping[str, VerificationKey] = {
            kid: k if isinstance(k, VerificationKey) else VerificationKey.from_key(k)
            for kid, k in keys.items()
        }

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any] | str | bytes) -> KeySet:
        """A KeySet from a JWKS document (``{"keys": [...]}``), e.g. read from a file."""
        keys = parse_jwks(jwks)
        return cls({kid: k for kid, k in keys.items() if kid is not None})

    def key_for(self, kid: str | None) -> VerificationKey | None:
        """The key with this ``kid``, or None."""
        return None if kid is None else self.keys.get(kid)

    async def refresh(self, ctx: Context) -> None:
        """A KeySet is fixed; nothing to refresh."""


def parse_jwks(document: Mapping[str, Any] | str | bytes) -> dict[str | None, VerificationKey]:
    """Parse a JWKS document into keys by ``kid``.

    Keys that pyjwt cannot use, keys marked ``"use": "enc"``, and keys too weak
    for their algorithm are skipped.  A single key without a ``kid`` is filed
    under None (it then verifies tokens that have no ``kid``).  Raises
    ``ValueError`` when the document is not a JWKS or holds no usable key.
    """
    obj: Any = json.loads(document) if isinstance(document, str | bytes) else document
    if not isinstance(obj, Mapping) or not isinstance(obj.get("keys"), list):
        raise ValueError("not a JWKS document")
    try:
        jwk_set = jwt.PyJWKSet.from_dict(dict(obj))
    except jwt.PyJWTError as exc:
        raise ValueError("the JWKS holds no usable key") from exc
    keys: dict[str | None, VerificationKey] = {}
    unnamed: list[VerificationKey] = []
    for jwk in jwk_set.keys:
        if jwk.public_key_use not in (None, "sig"):
            continue
        try:
            key = VerificationKey.from_key(jwk)
        except (ValueError, TypeError):
            continue
        kid = jwk.key_id
        if isinstance(kid, str):
            keys[kid] = key
        elif kid is None:
            unnamed.append(key)
    if len(unnamed) == 1:
        keys[None] = unnamed[0]
    if not keys:
        raise ValueError("the JWKS holds no usable key")
    return keys
