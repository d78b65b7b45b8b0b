"""Token errors: all UNAUTHENTICATED, with stable reasons and fixed messages."""

from __future__ import annotations

from kitpy import Code, Unauthenticated
from kitpy.auth import errors
from kitpy.errors import http_status


def test_every_token_error_is_a_401_with_a_unique_reason() -> None:
    classes = [getattr(errors, name) for name in errors.__all__]
    reasons = set()
    for cls in classes:
        err = cls()
        assert isinstance(err, Unauthenticated)
        assert err.code is Code.UNAUTHENTICATED
        assert http_status(err.code) == 401
        assert err.details == {"reason": cls.reason}
        assert err.message == cls.default_message
        assert err.headers is not None
        assert err.headers["WWW-Authenticate"].startswith("Bearer")
        reasons.add(cls.reason)
    assert len(reasons) == len(classes)


def test_reasons_are_stable() -> None:
    assert {c.reason for c in errors.TokenError.__subclasses__()} == {
        "missing", "malformed", "expired", "not_yet_valid", "bad_signature", "wrong_audience",
        "wrong_issuer", "algorithm_not_allowed", "unknown_key", "missing_claim", "invalid_claims",
        "duplicate_authorization",
    }  # fmt: skip
    assert {c.reason for c in errors.MissingClaim.__subclasses__()} == {"missing_exp"}


def test_the_new_messages_say_what_to_fix() -> None:
    assert errors.MissingExpiry().message == "token has no exp claim (an expiry is required)"
    assert isinstance(errors.MissingExpiry(), errors.MissingClaim)
    duplicate = errors.DuplicateAuthorization()
    assert duplicate.message == "more than one Authorization header"
    assert duplicate.headers == {"WWW-Authenticate": 'Bearer error="invalid_request"'}
