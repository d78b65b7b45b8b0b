"""Authentication and authorisation that work over any transport.

* bearer-token transport hooks (:func:`http_to_context`, :func:`context_to_http`,
  :func:`grpc_to_context`, :func:`context_to_grpc`), the :data:`TOKEN` key and
  :func:`authorization_header` (the one ``Authorization`` header, or an error for two);
* HTTP Basic auth (:func:`basic_auth`, :func:`basic_http_to_context`);
* authorisation from claims (:func:`require_scopes`, :func:`require_roles`);
* the token errors (:class:`TokenError` and its subclasses).

None of these import a third-party package.  JWT verification and signing are
in :mod:`kitpy.auth.jwt` (``kitpy[jwt]``).
"""

from kitpy.auth.authz import claim_values, require_claim_values, require_roles, require_scopes
from kitpy.auth.basic import BASIC_CREDENTIALS, BASIC_USER, basic_auth, basic_http_to_context
from kitpy.auth.bearer import (
    authorization_header,
    bearer_token,
    context_to_grpc,
    context_to_http,
    context_to_message,
    grpc_to_context,
    http_to_context,
    message_to_context,
)
from kitpy.auth.context import CLAIMS, TOKEN
from kitpy.auth.errors import (
    AlgorithmNotAllowed,
    BadSignature,
    DuplicateAuthorization,
    InvalidClaims,
    MissingClaim,
    MissingExpiry,
    TokenError,
    TokenExpired,
    TokenMalformed,
    TokenMissing,
    TokenNotYetValid,
    UnknownKey,
    WrongAudience,
    WrongIssuer,
)

__all__ = [
    "BASIC_CREDENTIALS",
    "BASIC_USER",
    "CLAIMS",
    "TOKEN",
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
    "authorization_header",
    "basic_auth",
    "basic_http_to_context",
    "bearer_token",
    "claim_values",
    "context_to_grpc",
    "context_to_http",
    "context_to_message",
    "grpc_to_context",
    "http_to_context",
    "message_to_context",
    "require_claim_values",
    "require_roles",
    "require_scopes",
]
