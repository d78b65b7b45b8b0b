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
    """Raise ImportError naming ``kitpy[extra]`` if any of ``modules`` cannot be imported.

    Dotted names are fine: ``require("google.protobuf", extra="grpc")`` reports
    the extra whether ``google`` itself or only ``google.protobuf`` is missing.
    """
    missing = [m for m in modules if not _importable(m)]
    if missing:
        raise ImportError(
            f"this part of kitpy needs {', '.join(missing)}, which is not installed; "
            f'install it with: pip install "kitpy[{extra}]" '
            f'(from a checkout: pip install -e ".[{extra}]")'
        )


def _importable(module: str) -> bool:
    # find_spec imports a dotted name's parents, and raises when one is missing.
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
