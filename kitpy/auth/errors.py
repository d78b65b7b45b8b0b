"""Authentication errors with stable, user-facing reasons.

Every rejected token raises a subclass of :class:`TokenError`, itself an
:class:`~kitpy.errors.Unauthenticated` (HTTP 401, gRPC UNAUTHENTICATED).  Each
class has a fixed ``reason`` (also sent as ``details["reason"]``) and a fixed
message: what went wrong, in words a client developer can act on, and nothing
that helps an attacker (no library text, no key ids, no expected values).  Every
error carries an RFC 6750 ``WWW-Authenticate`` header, which the HTTP transport
sends as a response header and the gRPC transport as trailing metadata.

=======================  ===========================================
reason                   raised when
=======================  ===========================================
``missing``              no bearer token in the request
``malformed``            not a well-formed JWT (segments, base64, JSON, too long)
``expired``              ``exp`` has passed (beyond the leeway)
``not_yet_valid``        ``nbf`` or ``iat`` is in the future (beyond the leeway)
``bad_signature``        the signature does not verify
``wrong_audience``       ``aud`` is missing or not accepted
``wrong_issuer``         ``iss`` is missing or not accepted
``algorithm_not_allowed``  ``alg`` is not in the allow-list or does not fit the key
``unknown_key``          no key for the token's ``kid``
``missing_claim``        a required claim is absent
``missing_exp``          no ``exp`` claim, and the parser requires one (the default)
``duplicate_authorization``  the request carries more than one ``Authorization``
``invalid_claims``       the claims are ill-typed or rejected by ``claims_type``
=======================  ===========================================
"""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar

from kitpy.errors import Unauthenticated

__all__ = [
    "AlgorithmNotAllowed",
    "BadSignature",
    "DuplicateAuthorization",
    "InvalidClaims",
    "MissingClaim",
    "MissingExpiry",
    "TokenError",
    "TokenExpired",
    "TokenMalformed",
    "TokenMissing",
    "TokenNotYetValid",
    "UnknownKey",
    "WrongAudience",
    "WrongIssuer",
]

_INVALID_TOKEN = MappingProxyType({"WWW-Authenticate": 'Bearer error="invalid_token"'})
_NO_TOKEN = MappingProxyType({"WWW-Authenticate": "Bearer"})
_INVALID_REQUEST = MappingProxyType({"WWW-Authenticate": 'Bearer error="invalid_request"'})


class TokenError(Unauthenticated):
    """A bearer token was missing or rejected (UNAUTHENTICATED, HTTP 401).

    ``reason`` is a stable identifier for the failure; the message is fixed per
    class.  Catch this to handle any token rejection.
    """

    reason: ClassVar[str] = "invalid"
    default_message: ClassVar[str] = "invalid token"

    def __init__(self) -> None:
        super().__init__(self.default_message, {"reason": self.reason}, headers=_INVALID_TOKEN)


class TokenMissing(TokenError):
    """No bearer token was presented."""

    reason = "missing"
    default_message = "missing bearer token"

    def __init__(self) -> None:
        super().__init__()
        self.headers = _NO_TOKEN


class TokenMalformed(TokenError):
    """The token is not a well-formed JWT."""

    reason = "malformed"
    default_message = "malformed token"


class TokenExpired(TokenError):
    """The token's ``exp`` has passed."""

    reason = "expired"
    default_message = "token has expired"


class TokenNotYetValid(TokenError):
    """The token's ``nbf`` or ``iat`` lies in the future."""

    reason = "not_yet_valid"
    default_message = "token is not yet valid"


class BadSignature(TokenError):
    """The token's signature does not verify."""

    reason = "bad_signature"
    default_message = "token signature is invalid"


class WrongAudience(TokenError):
    """The token's ``aud`` is missing or not one this service accepts."""

    reason = "wrong_audience"
    default_message = "token audience is not accepted"


class WrongIssuer(TokenError):
    """The token's ``iss`` is missing or not one this service accepts."""

    reason = "wrong_issuer"
    default_message = "token issuer is not accepted"


class AlgorithmNotAllowed(TokenError):
    """The token's ``alg`` is not in the allow-list, or does not fit the key."""

    reason = "algorithm_not_allowed"
    default_message = "token algorithm is not allowed"


class UnknownKey(TokenError):
    """No verification key matches the token's ``kid``."""

    reason = "unknown_key"
    default_message = "token signing key is unknown"


class MissingClaim(TokenError):
    """A claim the service requires is absent."""

    reason = "missing_claim"
    default_message = "token lacks a required claim"


class MissingExpiry(MissingClaim):
    """The token has no ``exp`` claim, so it would be valid forever.

    :func:`~kitpy.auth.jwt.jwt_parser` requires ``exp`` unless built with
    ``require_exp=False``.
    """

    reason = "missing_exp"
    default_message = "token has no exp claim (an expiry is required)"


class DuplicateAuthorization(TokenError):
    """The request carries more than one ``Authorization`` header (or gRPC metadata entry).

    Transports disagree on which one counts (aiohttp reads the first, gRPC
    metadata keeps the last), so a request with two is refused rather than guessed at.
    """

    reason = "duplicate_authorization"
    default_message = "more than one Authorization header"

    def __init__(self) -> None:
        super().__init__()
        self.headers = _INVALID_REQUEST


class InvalidClaims(TokenError):
    """A claim has the wrong type, or the claims were rejected by ``claims_type``."""

    reason = "invalid_claims"
    default_message = "token claims are invalid"
