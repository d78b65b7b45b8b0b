"""Turning raw setting values (text, or TOML values) into the types a settings class declares.

:func:`convert` understands ``str``, ``int``, ``float``, ``bool``, enums,
``Literal``, optionals, ``list[T]`` and ``tuple[T, ...]`` (from a TOML array
or comma-separated text) and any class with a ``parse`` classmethod, which is
how :class:`~kitpy.config.Duration`, :class:`~kitpy.config.Size`,
:class:`~kitpy.config.Address`, :class:`~kitpy.config.URL` and
:class:`~kitpy.config.Secret` -- and your own types -- plug in.  A value that
does not fit raises ``ValueError`` saying what was expected.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, Literal, Union

__all__ = ["convert", "describe"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def convert(raw: Any, tp: Any) -> Any:
    """``raw`` as a value of type ``tp``; raise ValueError naming what was expected.

    >>> convert("8", int), convert("on", bool), convert("a, b", list[str])
    (8, True, ['a', 'b'])
    """
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _convert_optional(raw, tp)
    if origin is Literal:
        return _convert_literal(raw, typing.get_args(tp))
    if origin in (list, tuple):
        return _convert_sequence(raw, tp, origin)
    if tp is Any:
        return raw
    if tp is bool:
        return _convert_bool(raw)
    if tp in (int, float):
        return _convert_number(raw, tp)
    if tp is str:
        if not isinstance(raw, str):
            raise ValueError(f"expected text, got {raw!r}")
        return raw
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _convert_enum(raw, tp)
    parse = getattr(tp, "parse", None)
    if callable(parse):
        return parse(raw)
    raise TypeError(
        f"kitpy.config cannot read settings of type {tp!r}; give it a parse classmethod"
    )


def describe(tp: Any) -> str:
    """A short name for ``tp`` in help texts: ``int``, ``Duration``, ``list[str]``, ``a|b``.

    An optional is described by what it holds:

    >>> describe(float | None), describe(Literal["json", "console"])
    ('float', 'json|console')
    """
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return "|".join(describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is Literal:
        return "|".join(str(a) for a in typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "|".join(str(m.value) for m in tp)
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _convert_optional(raw: Any, tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null")):
        return None
    if len(args) != 1:
        raise TypeError(f"kitpy.config reads optionals of one type, not {tp!r}")
    return convert(raw, args[0])


def _convert_literal(raw: Any, choices: tuple[Any, ...]) -> Any:
    for choice in choices:
        if raw == choice or (isinstance(raw, str) and raw == str(choice)):
            return choice
    raise ValueError(f"expected one of {', '.join(map(str, choices))}, got {raw!r}")


def _convert_sequence(raw: Any, tp: Any, origin: Any) -> Any:
    args = typing.get_args(tp)
    item = args[0] if args else Any
    if isinstance(raw, str):
        raw = [part.strip() for part in raw.split(",") if part.strip()]
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"expected a list (or comma-separated text), got {raw!r}")
    items = [convert(x, item) for x in raw]
    return tuple(items) if origin is tuple else items


def _convert_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false (or 1/0, yes/no, on/off), got {raw!r}")


def _convert_number(raw: Any, tp: type[int] | type[float]) -> int | float:
    if isinstance(raw, bool):
        raise ValueError(f"expected {'an integer' if tp is int else 'a number'}, got {raw!r}")
    if tp is float and isinstance(raw, (int, float)):
        return float(raw)
    if tp is int and isinstance(raw, int):
        return raw
    try:
        return tp(str(raw).strip())
    except ValueError:
        raise ValueError(
            f"expected {'an integer' if tp is int else 'a number'}, got {raw!r}"
        ) from None


def _convert_enum(raw: Any, tp: type[enum.Enum]) -> enum.Enum:
    for member in tp:
        if raw == member.value or (isinstance(raw, str) and raw.lower() == member.name.lower()):
            return member
    if isinstance(raw, str):
        for member in tp:
            if raw == str(member.value):
                return member
    choices = ", ".join(str(m.value) for m in tp)
    raise ValueError(f"expected one of {choices}, got {raw!r}")
