"""The rules that turn pyjwt's verdicts and a token's time claims into kitpy errors.

* :func:`translate` -- every ``PyJWTError`` (``InvalidKeyError`` included, which is
  not an ``InvalidTokenError``) to the matching :class:`~kitpy.auth.errors.TokenError`.
* :func:`validity_window` -- ``exp``/``nbf``/``iat`` to the ``[not_before, expires_at)``
  window the parser and its cache check against the clock, with pyjwt's boundaries.
"""

from __future__ import annotations

import math
from typing import Any

from kitpy.auth.errors import (
    AlgorithmNotAllowed,
    BadSignature,
    InvalidClaims,
    MissingClaim,
    MissingExpiry,
    TokenError,
    TokenExpired,
    TokenMalformed,
    TokenNotYetValid,
    WrongAudience,
    WrongIssuer,
)

import jwt  # isort: skip  # kitpy.auth.jwt has checked that pyjwt is installed

__all__ = ["translate", "validity_window"]

_ABSENT: Any = object()
_NUMBERS = frozenset({int, float})  # exact types: a JSON bool is not a time
_isfinite = math.isfinite
_CLAIM_ERRORS: tuple[type[jwt.PyJWTError], ...] = tuple(
    getattr(jwt.exceptions, name)
    for name in ("InvalidIssuedAtError", "InvalidSubjectError", "InvalidJTIError")
    if hasattr(jwt.exceptions, name)  # the last two are new in pyjwt 2.10
)


def translate(exc: jwt.PyJWTError) -> TokenError:
    """The :class:`TokenError` for a pyjwt failure."""
    if isinstance(exc, jwt.InvalidSignatureError):
        return BadSignature()
    if isinstance(exc, jwt.ExpiredSignatureError):
        return TokenExpired()
    if isinstance(exc, jwt.ImmatureSignatureError):
        return TokenNotYetValid()
    if isinstance(exc, jwt.InvalidAudienceError):
        return WrongAudience()
    if isinstance(exc, jwt.InvalidIssuerError):
        return WrongIssuer()
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return AlgorithmNotAllowed()
    if isinstance(exc, jwt.MissingRequiredClaimError):
        if exc.claim == "aud":
            return WrongAudience()
        if exc.claim == "iss":
            return WrongIssuer()
        if exc.claim == "exp":
            return MissingExpiry()
        return MissingClaim()
    if isinstance(exc, _CLAIM_ERRORS):
        return InvalidClaims()
    if isinstance(exc, jwt.InvalidKeyError):
        return AlgorithmNotAllowed()
    if isinstance(exc, jwt.DecodeError) or type(exc) is jwt.InvalidTokenError:
        return TokenMalformed()
    return TokenError()


def validity_window(payload: dict[str, Any], leeway: float) -> tuple[float, float]:
    """``(not_before, expires_at)`` of a token in wall-clock seconds, leeway applied.

    The token is valid at ``now`` iff ``not_before <= now < expires_at``, which
    matches pyjwt's own rules (``exp <= now - leeway`` is expired, ``nbf`` or
    ``iat`` ``> now + leeway`` is not yet valid).  A time claim that is present
    but not a finite number (a string, a bool, NaN, Infinity, 10**400) raises
    :class:`InvalidClaims`.
    """
    get = payload.get
    iat = get("iat", _ABSENT)
    nbf = get("nbf", _ABSENT)
    exp = get("exp", _ABSENT)
    not_before = -math.inf
    expires_at = math.inf
    try:
        if iat is not _ABSENT:
            if type(iat) not in _NUMBERS or not _isfinite(iat):
                raise InvalidClaims()
            not_before = iat - leeway
        if nbf is not _ABSENT:
            if type(nbf) not in _NUMBERS or not _isfinite(nbf):
                raise InvalidClaims()
            not_before = max(not_before, nbf - leeway)
        if exp is not _ABSENT:
            if type(exp) not in _NUMBERS or not _isfinite(exp):
                raise InvalidClaims()
            expires_at = exp + leeway
    except OverflowError:  # an int too large for a float
        raise InvalidClaims() from None
    return not_before, expires_at
