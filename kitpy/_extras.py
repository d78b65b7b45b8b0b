"""Clear import errors for integrations whose extra is not installed.

Each integration package calls :func:`require` before importing its
third-party library, so ``import kitpy.transport.http`` without aiohttp fails
with a message that names the extra to install instead of a bare
``ModuleNotFoundError: No module named 'aiohttp'``.
"""

from __future__ import annotations

import importlib.util

__all__ = ["require"]


def require(*modules: str, extra: str) -> None:
    """Raise ImportError naming ``kitpy[extra]`` if any of ``modules`` cannot be imported."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"this part of kitpy needs {', '.join(missing)}; "
            f'install it with: pip install "kitpy[{extra}]"'
        )
