"""JWT authentication with pyjwt: parser and signer middleware, key sources, token cache.

Server side: a transport hook puts the bearer token in the Context
(:func:`http_to_context`, :func:`grpc_to_context`), :func:`jwt_parser` verifies
it and puts the claims in the Context; authorisation helpers
(:func:`~kitpy.auth.require_scopes`) check them.  Client side: :func:`jwt_signer`
signs a token and :func:`context_to_http` / :func:`context_to_grpc` send it.

Needs ``kitpy[jwt]``.  The JWKS key source lives in :mod:`kitpy.auth.jwt.jwks`
(it needs aiohttp, ``kitpy[http]``).  Errors are in :mod:`kitpy.auth.errors`.

Tokens must carry ``exp`` unless the parser is built with ``require_exp=False``.

Example::

    parser = jwt_parser(public_pem, algorithms=["RS256"], audience="stringsvc")
    server = Server(parser(endpoint), ..., before=[http_to_context])
    # or check the token before the Server reads the body:
    server = Server(endpoint, ..., before=[http_to_context], authenticate=parser.authenticate)
"""

from kitpy._extras import require

require("jwt", "cryptography", extra="jwt")

from kitpy.auth.bearer import (
    context_to_grpc,
    context_to_http,
    grpc_to_context,
    http_to_context,
)
from kitpy.auth.context import CLAIMS, TOKEN
from kitpy.auth.jwt.cache import TokenCache
from kitpy.auth.jwt.keys import KeySet, KeySource, StaticKey, VerificationKey, parse_jwks
from kitpy.auth.jwt.parser import JWTParser, jwt_parser
from kitpy.auth.jwt.signer import jwt_signer

__all__ = [
    "CLAIMS",
    "TOKEN",
    "JWTParser",
    "KeySet",
    "KeySource",
    "StaticKey",
    "TokenCache",
    "VerificationKey",
    "context_to_grpc",
    "context_to_http",
    "grpc_to_context",
    "http_to_context",
    "jwt_parser",
    "jwt_signer",
    "parse_jwks",
]
