"""The Context keys that carry credentials between transports and auth middleware.

* :data:`TOKEN` -- the raw bearer token.  Server before hooks set it from the
  wire; :func:`~kitpy.auth.jwt.jwt_signer` sets it for outgoing calls; client
  before hooks copy it to the wire.  One key for both directions (as in Go kit),
  so a service that wires a client hook without a signer *forwards* the caller's
  token -- add a signer to the client to replace it.
* :data:`CLAIMS` -- the verified JWT claims, set by the JWT parser (when its
  ``claims_type`` is the default ``dict``) and read by the authorisation helpers.
"""

from __future__ import annotations

from typing import Any

from kitpy.context import Key

__all__ = ["CLAIMS", "TOKEN"]

TOKEN: Key[str] = Key("auth.token")
"""The raw bearer token (without the ``Bearer`` scheme)."""

CLAIMS: Key[dict[str, Any]] = Key("auth.claims")
"""The claims of a verified JWT."""
