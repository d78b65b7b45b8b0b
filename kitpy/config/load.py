"""Loading a typed settings class from defaults, a TOML file, the environment and flags.

Sources in rising precedence: the class's defaults < a TOML file (``--config
PATH`` or ``<PREFIX>_CONFIG``) < environment variables ``<PREFIX>_<FIELD>``
(nested sections joined with ``__``) < command-line flags ``--<field>``
(nested: ``--<section>.<field>``).  One name, three spellings::

    http_addr = "0.0.0.0:8080"        # in the file
    STRINGSVC_HTTP_ADDR=0.0.0.0:8080  # in the environment
    --http-addr 0.0.0.0:8080          # on the command line

Every value is converted to the field's type (:mod:`kitpy.config.convert`).
A value that does not fit, an unknown key in the file and an unknown
``<PREFIX>_`` variable are errors naming their source; so is a ``ValueError``
from the class's own ``__post_init__`` that names one field.  :func:`load`
prints the one line and exits with status 2, as argparse does for a bad flag.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import inspect
import itertools
import os
import re
import sys
import textwrap
import tomllib
import typing
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from kitpy.config.convert import convert, describe
from kitpy.config.types import Secret

__all__ = ["ConfigError", "Setting", "load", "settings_fields"]

T = TypeVar("T")
_MISSING: Any = dataclasses.MISSING
_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_KEY = re.compile(r'^\s*([A-Za-z0-9_-]+|"[^"]+")\s*=')


class ConfigError(ValueError):
    """A setting that cannot be used, with where it came from.

    ``str(error)`` is one line a person can act on, such as
    ``settings.toml line 3: http_addr: expected host:port ..., got 'x'``.
    """

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


@dataclasses.dataclass(frozen=True)
class Setting:
    """One leaf field of a settings class, with its three spellings.

    >>> s = Setting(("log", "level"), str, "info", "")
    >>> s.key, s.env("APP"), s.flag
    ('log.level', 'APP_LOG__LEVEL', '--log.level')
    """

    path: tuple[str, ...]
    type: Any
    default: Any
    help: str

    @property
    def key(self) -> str:
        """The dotted name, as in the TOML file: ``log.level``."""
        return ".".join(self.path)

    @property
    def flag(self) -> str:
        """The command-line flag: ``--log.level``, ``--http-addr``."""
        return "--" + ".".join(p.replace("_", "-") for p in self.path)

    def env(self, prefix: str) -> str:
        """The environment variable: ``PREFIX_LOG__LEVEL``."""
        return f"{prefix}_" + "__".join(p.upper() for p in self.path)

    @property
    def secret(self) -> bool:
        """Whether this field holds a :class:`~kitpy.config.Secret`."""
        return self.type is Secret or Secret in typing.get_args(self.type)


def settings_fields(cls: type) -> list[Setting]:
    """Every leaf setting of ``cls`` (a dataclass or msgspec Struct), sections flattened.

    A field whose type is itself a dataclass or Struct is a section.  Define
    settings classes at module level, so their annotations can be resolved.
    """
    return list(_walk(cls, ()))


def load(
    cls: type[T],
    *,
    prefix: str,
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    prog: str | None = None,
    description: str | None = None,
    exit_on_error: bool = True,
    ignore: Collection[str] = (),
) -> T:
    """Build ``cls`` from its defaults, a TOML file, the environment and flags.

    ``argv`` defaults to ``sys.argv[1:]`` and ``env`` to ``os.environ``.  The
    file is ``config_file``, else ``--config PATH``, else ``<PREFIX>_CONFIG``.
    ``--help`` lists every setting with its variable, default and the
    field's docstring.  A bad setting prints one line to stderr and exits with
    status 2 (``exit_on_error=False`` raises :class:`ConfigError` instead).
    ``ignore`` names top-level keys of the file that another reader owns
    (the gateway's ``route`` and ``upstream`` tables); any other unknown key
    is an error.

    Example (``Settings`` defined at module level)::

        @dataclass(frozen=True)
        class Settings:
            timeout: Duration = Duration(2.0)
            '''How long a call may take.'''

        load(Settings, prefix="APP", argv=["--timeout", "250ms"])  # Settings(timeout=0.25)
    """
    settings = settings_fields(cls)
    parser = _parser(settings, prefix=prefix, prog=prog, description=description or cls.__doc__)
    args = vars(parser.parse_args(sys.argv[1:] if argv is None else list(argv)))
    environ = os.environ if env is None else env
    try:
        values: dict[tuple[str, ...], Any] = {}
        origins: dict[tuple[str, ...], str] = {}  # where each value came from, for errors
        known = _lookup(settings)
        path = config_file or args.pop("config", None) or environ.get(f"{prefix}_CONFIG")
        if path:
            found = _from_file(Path(path), settings, ignore=frozenset(ignore))
            values.update(found)
            origins.update(dict.fromkeys(found, str(path)))
        found = _from_env(environ, prefix, settings)
        values.update(found)
        origins.update({k: f"environment variable {known[k].env(prefix)}" for k in found})
        found = _from_flags(args, settings)
        values.update(found)
        origins.update({k: f"flag {known[k].flag}" for k in found})
        return _build(cls, (), values, origins=origins)
    except ConfigError as exc:
        if not exit_on_error:
            raise
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _walk(cls: type, path: tuple[str, ...]) -> typing.Iterator[Setting]:
    hints = typing.get_type_hints(cls)
    docs = _attribute_docs(cls)
    for name, default in _declared(cls):
        tp = hints[name]
        if _is_settings_class(tp):
            yield from _walk(tp, (*path, name))
        else:
            yield Setting((*path, name), tp, default, docs.get(name, ""))


def _declared(cls: type) -> list[tuple[str, Any]]:
    """``(name, default)`` of each field, ``_MISSING`` when required."""
    out: list[tuple[str, Any]] = []
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            factory: Any = f.default_factory
            default = f.default if factory is _MISSING else factory()
            out.append((f.name, default))
        return out
    import msgspec.structs  # only a Struct gets here, so msgspec is installed

    for info in msgspec.structs.fields(cls):
        if info.default_factory is not msgspec.NODEFAULT:
            out.append((info.name, info.default_factory()))
        elif info.default is not msgspec.NODEFAULT:
            out.append((info.name, info.default))
        else:
            out.append((info.name, _MISSING))
    return out


def _is_settings_class(tp: Any) -> bool:
    return isinstance(tp, type) and (
        dataclasses.is_dataclass(tp) or hasattr(tp, "__struct_fields__")
    )


def _attribute_docs(cls: type) -> dict[str, str]:
    """The string literal under each field (PEP 257 attribute docstrings)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _parser(
    settings: list[Setting], *, prefix: str, prog: str | None, description: str | None
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=inspect.cleandoc(description) if description else None,
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--config", metavar="PATH", help=f"a TOML settings file (env {prefix}_CONFIG)"
    )
    for s in settings:
        shown = "***" if s.secret else ("required" if s.default is _MISSING else _show(s.default))
        text = f"{s.help} " if s.help else ""
        text += f"(env {s.env(prefix)}; default: {shown})".replace("%", "%%")
        if s.type is bool:
            parser.add_argument(
                s.flag, dest=s.key, action=argparse.BooleanOptionalAction, help=text
            )
        else:
            parser.add_argument(s.flag, dest=s.key, metavar=describe(s.type).upper(), help=text)
        if s.secret:
            parser.add_argument(
                f"{s.flag}-file",
                dest=f"{s.key}_file",
                metavar="PATH",
                help=f"read {s.flag} from a file",
            )
    return parser


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list) or type(value) is tuple:
        return ",".join(map(str, value)) or "none"
    return str(getattr(value, "value", value))  # an enum shows its value


def _lookup(settings: list[Setting]) -> dict[tuple[str, ...], Setting]:
    return {s.path: s for s in settings}


def _from_file(
    path: Path, settings: list[Setting], *, ignore: frozenset[str] = frozenset()
) -> dict[tuple[str, ...], Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the settings file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    lines = _key_lines(text)
    known = _lookup(settings)
    sections = {s.path[:i] for s in settings for i in range(1, len(s.path))}
    out: dict[tuple[str, ...], Any] = {}

    def visit(table: Mapping[str, Any], at: tuple[str, ...]) -> None:
        for name, raw in table.items():
            if not at and name in ignore:
                continue
            key = (*at, name)
            where = f"{path} line {lines[key]}" if key in lines else str(path)
            if key in sections and isinstance(raw, dict):
                visit(raw, key)
            elif key in known:
                out[key] = _convert(known[key], raw, where)
            elif name.endswith("_file") and _is_secret(known, (*at, name[: -len("_file")])):
                secret = known[(*at, name[: -len("_file")])]
                out[secret.path] = _convert(secret, _read_secret(raw, where), where)
            else:
                hint = _suggest(".".join(key), [s.key for s in settings])
                raise ConfigError(where, f"unknown setting {'.'.join(key)!r}{hint}")

    visit(data, ())
    return out


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line of each ``key = value`` in a TOML text, under its ``[table]``."""
    table: tuple[str, ...] = ()
    lines: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _TABLE.match(line):
            table = tuple(p.strip().strip('"') for p in header.group(1).split("."))
        elif key := _KEY.match(line):
            lines.setdefault((*table, key.group(1).strip('"')), number)
    return lines


def _from_env(
    environ: Mapping[str, str], prefix: str, settings: list[Setting]
) -> dict[tuple[str, ...], Any]:
    by_name = {s.env(prefix): s for s in settings}
    files = {f"{s.env(prefix)}_FILE": s for s in settings if s.secret}
    out: dict[tuple[str, ...], Any] = {}
    for name in sorted(environ):
        if not name.startswith(f"{prefix}_") or name == f"{prefix}_CONFIG":
            continue
        where = f"environment variable {name}"
        if name in by_name:
            out[by_name[name].path] = _convert(by_name[name], environ[name], where)
        elif name in files:
            out[files[name].path] = _convert(files[name], _read_secret(environ[name], where), where)
        else:
            hint = _suggest(name, [*by_name, *files])
            raise ConfigError(where, f"no setting is called that{hint}")
    return out


def _from_flags(args: Mapping[str, Any], settings: list[Setting]) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for s in settings:
        if s.key in args:
            out[s.path] = _convert(s, args[s.key], f"flag {s.flag}")
        if f"{s.key}_file" in args:
            where = f"flag {s.flag}-file"
            out[s.path] = _convert(s, _read_secret(args[f"{s.key}_file"], where), where)
    return out


def _convert(setting: Setting, raw: Any, where: str) -> Any:
    try:
        return convert(raw, setting.type)
    except ValueError as exc:
        raise ConfigError(where, f"{setting.key}: {exc}") from None


def _is_secret(known: Mapping[tuple[str, ...], Setting], path: tuple[str, ...]) -> bool:
    return path in known and known[path].secret


def _read_secret(path: Any, where: str) -> str:
    try:
        return Path(str(path)).read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(where, f"cannot read the secret file {path} ({exc.strerror})") from None


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _build(
    cls: type[T],
    path: tuple[str, ...],
    values: Mapping[tuple[str, ...], Any],
    base: T | None = None,
    *,
    origins: Mapping[tuple[str, ...], str] | None = None,
) -> T:
    """``cls`` from ``values`` (keyed by path); fields not in ``values`` keep ``base``'s.

    A ``ValueError`` (or ``TypeError``) from the class's own checks
    (``__post_init__``) becomes a :class:`ConfigError`; when its message names
    exactly one field of the class, the error names where that field was set
    (``origins``: path -> source), e.g. ``flag --ratio: ratio must be <= 1``.
    """
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, default in _declared(cls):
        key = (*path, name)
        if _is_settings_class(hints[name]):
            if any(k[: len(key)] == key for k in values):
                inner = getattr(base, name) if base is not None else default
                inner = None if inner is _MISSING else inner
                kwargs[name] = _build(hints[name], key, values, inner, origins=origins)
        elif key in values:
            kwargs[name] = values[key]
        elif base is None and default is _MISSING:
            flag = Setting(key, hints[name], default, "").flag
            raise ConfigError("settings", f"{'.'.join(key)} is required (set {flag})")
    try:
        if base is None:
            return cls(**kwargs)
        instance: Any = base  # a dataclass or Struct instance of cls
        if dataclasses.is_dataclass(cls):
            return cast(T, dataclasses.replace(instance, **kwargs))
        import msgspec.structs

        return cast(T, msgspec.structs.replace(instance, **kwargs))
    except (TypeError, ValueError) as exc:  # the class's own validation (__post_init__)
        where = _blame(cls, path, str(exc), origins or {})
        if where is None:
            raise ConfigError("settings", f"{'.'.join(path) or cls.__name__}: {exc}") from None
        raise ConfigError(where, str(exc)) from None


def _blame(
    cls: type, path: tuple[str, ...], message: str, origins: Mapping[tuple[str, ...], str]
) -> str | None:
    """Where the one field of ``cls`` that ``message`` names was set; None if unclear."""
    named = [
        (*path, name)
        for name, _ in _declared(cls)
        if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", message)
    ]
    return origins.get(named[0]) if len(named) == 1 else None
