"""Keys for every algorithm the auth tests cover, generated once per session."""

from __future__ import annotations

import pytest

from tests.auth.tokens import ALGORITHMS, Algo, make_algo


@pytest.fixture(scope="session")
def algos() -> dict[str, Algo]:
    """HS256, RS256, ES256 and EdDSA keys, by algorithm name."""
    return {name: make_algo(name) for name in ALGORITHMS}


@pytest.fixture(params=ALGORITHMS)
def algo(request: pytest.FixtureRequest, algos: dict[str, Algo]) -> Algo:
    """Each algorithm in turn."""
    return algos[request.param]
