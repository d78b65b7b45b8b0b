"""The template (``kitpy new``) and ``examples/stringsvc`` keep the same shapes.

Both are read as syntax trees, not run: the service methods take the Context
first, the ``Endpoints`` set has no fixed Context, the observability layers
are the same, the process is wired through the same lifecycle calls, and the
settings are a kitpy.config class declaring the settings they share alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "stringsvc"
TEMPLATE = ROOT / "kitpy" / "scaffold" / "template" / "svcname"
BOTH = pytest.mark.parametrize("folder", [EXAMPLE, TEMPLATE], ids=["example", "template"])


def field_names(cls: ast.ClassDef) -> list[str]:
    """The annotated attributes of a class body, in order."""
    return [
        n.target.id
        for n in cls.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    ]


def tree(folder: Path, module: str) -> ast.Module:
    return ast.parse((folder / f"{module}.py").read_text())


def top_level(module: ast.Module) -> dict[str, ast.stmt]:
    return {
        node.name: node
        for node in module.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


def code_shape(node: ast.AST) -> str:
    """``ast.dump`` with docstrings dropped and every string constant blanked."""
    node = ast.parse(ast.unparse(node))  # a copy
    for sub in ast.walk(node):
        body = getattr(sub, "body", None)
        if isinstance(body, list) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                del body[0]  # a docstring (or another bare constant: no code)
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            sub.value = ""
    return ast.dump(node)


def calls(module: ast.AST) -> dict[str, list[ast.Call]]:
    """Every call in ``module`` by the unparsed text of what is called."""
    found: dict[str, list[ast.Call]] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Call):
            found.setdefault(ast.unparse(node.func), []).append(node)
    return found


SHARED_SETTINGS = (
    "http_addr",
    "grpc_addr",
    "grpc_reflection",
    "shutdown_grace",
    "shutdown_drain",
    "log_level",
)


def settings_class(folder: Path) -> ast.ClassDef:
    settings = top_level(tree(folder, "config"))["Settings"]
    assert isinstance(settings, ast.ClassDef)
    return settings


def declared(cls: ast.ClassDef) -> dict[str, ast.AnnAssign]:
    return {
        n.target.id: n
        for n in cls.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }


@BOTH
def test_settings_are_a_frozen_dataclass_with_help_under_every_field(folder: Path) -> None:
    settings = settings_class(folder)
    assert [ast.unparse(d) for d in settings.decorator_list] == ["dataclass(frozen=True)"]
    for node, after in zip(settings.body, [*settings.body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign):
            assert node.value is not None, f"{ast.unparse(node.target)} needs a default"
            doc = after.value if isinstance(after, ast.Expr) else None
            text = doc.value if isinstance(doc, ast.Constant) else None
            assert isinstance(text, str), f"{ast.unparse(node.target)} has no help docstring"


def test_the_shared_settings_are_declared_alike() -> None:
    example, template = (declared(settings_class(f)) for f in (EXAMPLE, TEMPLATE))
    for name in SHARED_SETTINGS:
        assert ast.unparse(example[name]) == ast.unparse(template[name]), f"{name} drifted"
    aliases = [
        ast.unparse(node)
        for f in (EXAMPLE, TEMPLATE)
        for node in tree(f, "config").body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "LogLevel"
    ]
    assert len(aliases) == 2
    assert aliases[0] == aliases[1]


@BOTH
def test_main_loads_the_settings_with_the_service_prefix(folder: Path) -> None:
    (load,) = calls(top_level(tree(folder, "__main__"))["main"])["load"]
    assert [ast.unparse(a) for a in load.args] == ["Settings"]
    keywords = {k.arg: ast.unparse(k.value) for k in load.keywords}
    module = "examples.stringsvc" if folder == EXAMPLE else "svcname"
    prefix = folder.name.upper()  # the environment variables are STRINGSVC_*, SVCNAME_*
    assert keywords == {"prefix": repr(prefix), "prog": repr(f"python -m {module}"), "argv": "argv"}


@BOTH
def test_service_methods_take_the_context_first(folder: Path) -> None:
    methods = [
        (cls.name, method)
        for cls in top_level(tree(folder, "service")).values()
        if isinstance(cls, ast.ClassDef)
        for method in cls.body
        if isinstance(method, ast.AsyncFunctionDef)
    ]
    assert len(methods) >= 2  # the Protocol's and the implementation's
    for cls, method in methods:
        first = method.args.args[1]
        annotation = ast.unparse(first.annotation) if first.annotation else ""
        assert (first.arg, annotation) == ("ctx", "Context"), f"{cls}.{method.name}"


@BOTH
def test_the_endpoints_set_takes_the_context_per_call(folder: Path) -> None:
    module = tree(folder, "endpoints")
    endpoints = top_level(module)["Endpoints"]
    assert isinstance(endpoints, ast.ClassDef)
    fields = field_names(endpoints)
    assert fields
    assert all(f.endswith("_endpoint") for f in fields), fields  # no fixed ctx
    methods = {
        m.name: m for m in endpoints.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assert "wrap" in methods
    for name, method in methods.items():
        if name != "wrap":
            assert method.args.args[1].arg == "ctx", name
    make = top_level(module)["make_endpoints"]
    assert isinstance(make, ast.FunctionDef)
    assert [a.arg for a in make.args.args] == ["svc"]
    options = [a.arg for a in make.args.kwonlyargs]  # stream_middleware: with streaming ones
    assert options in (["middleware"], ["middleware", "stream_middleware"])
    found = calls(module)
    names = len(found.get("named", [])) + len(found.get("named_stream", []))
    assert names == len(fields), "every endpoint is named(...) or named_stream(...)"


@BOTH
def test_observability_uses_the_call_layers_in_the_same_order(folder: Path) -> None:
    server_middleware = None
    for node in ast.walk(tree(folder, "observability")):
        if isinstance(node, ast.FunctionDef) and node.name == "server_middleware":
            server_middleware = node
    assert server_middleware is not None
    chained = calls(server_middleware)["chain"][0]
    layers = [ast.unparse(arg.func) for arg in chained.args if isinstance(arg, ast.Call)]
    assert layers == ["call_tracing", "call_logging", "call_metrics"]


LIFECYCLE_CALLS = (
    "Lifecycle",
    "life.on_shutdown",
    "serve_http",
    "serve_grpc",
    "life.wait_for_signal",
)


STRINGSVC_ONLY = {"authenticate", "stream_middleware"}
"""Options stringsvc passes and the template does not: the template has no auth, no stream."""


def test_main_wires_the_lifecycle_the_same_way() -> None:
    example, template = (calls(tree(f, "__main__")) for f in (EXAMPLE, TEMPLATE))
    for name in LIFECYCLE_CALLS:
        assert name in example, name
        assert [code_shape(c) for c in example[name]] == [code_shape(c) for c in template[name]], (
            f"{name}(...) differs"
        )
    for name in ("make_grpc_server", "make_http_app", "make_endpoints"):
        keywords = [
            sorted(k.arg or "**" for k in call.keywords if k.arg not in STRINGSVC_ONLY)
            for call in example[name]
        ]
        assert keywords == [sorted(k.arg or "**" for k in c.keywords) for c in template[name]], name
    main = [top_level(tree(f, "__main__"))["main"] for f in (EXAMPLE, TEMPLATE)]
    assert code_shape(main[0]) == code_shape(main[1])


def test_main_imports_the_same_lifecycle_pieces() -> None:
    def lifecycle_imports(folder: Path) -> set[str]:
        return {
            f"{node.module}.{alias.name}"
            for node in ast.walk(tree(folder, "__main__"))
            if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("kitpy.lifecycle")
            for alias in node.names
        }

    assert (
        lifecycle_imports(EXAMPLE)
        == lifecycle_imports(TEMPLATE)
        == {
            "kitpy.lifecycle.Lifecycle",
            "kitpy.lifecycle.grpc.serve_grpc",
            "kitpy.lifecycle.http.Health",
            "kitpy.lifecycle.http.serve_http",
            "kitpy.lifecycle.run.run",
        }
    )
