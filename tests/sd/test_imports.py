"""kitpy.sd imports no third-party package, and builds on the core rather than on resilience."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import dns.asyncresolver

import kitpy
from kitpy.sd import FixedInstancer, Instance, Instancer, Publisher, Registrar
from kitpy.sd.dnssrv import DNSSRVInstancer
from kitpy.sd.etcd import EtcdClient, EtcdInstancer, EtcdRegistrar

PROBE = """
import json, sys
before = set(sys.modules)
import kitpy.sd, kitpy.sd.fixed
after = set(sys.modules) - before
print(json.dumps(sorted(after)))
"""


def test_importing_kitpy_sd_pulls_in_no_third_party_package() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    roots = {m.split(".")[0] for m in json.loads(out)}
    assert roots - set(sys.stdlib_module_names) == {"kitpy"}


def test_every_backend_fits_the_instancer_and_registrar_protocols() -> None:
    # mypy checks these assignments; the asserts check the runtime shape
    etcd = EtcdClient("etcd://127.0.0.1:2379")
    resolver = dns.asyncresolver.Resolver(configure=False)
    instancers: list[Instancer] = [
        Publisher(),
        FixedInstancer(["a:1"]),
        EtcdInstancer(etcd, "/svc/"),
        DNSSRVInstancer("_http._tcp.svc.test", resolver=resolver),
    ]
    registrar: Registrar = EtcdRegistrar(etcd, "/svc/", Instance("a:1"))
    assert etcd.url == "http://127.0.0.1:2379"
    assert all(callable(i.subscribe) for i in instancers)
    assert callable(registrar.register)
    assert callable(registrar.deregister)


def kitpy_imports(package: Path) -> dict[str, set[str]]:
    """``{module file: kitpy modules it imports}`` for every module under ``package``."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(package.parent))] = {n for n in names if n.startswith("kitpy")}
    return found


def test_sd_and_circuitbreaker_build_on_the_core_not_on_resilience() -> None:
    # lb.py *uses* retry to build lb_retry; nothing else in either package leans on resilience
    root = Path(kitpy.__file__).parent
    users = {
        module
        for package in ("sd", "circuitbreaker")
        for module, imported in kitpy_imports(root / package).items()
        if any(name.startswith("kitpy.resilience") for name in imported)
    }
    assert users == {"sd/lb.py"}
