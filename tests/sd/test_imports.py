"""kitpy.sd imports no third-party package and exports exactly its public API."""

from __future__ import annotations

import json
import subprocess
import sys

import dns.asyncresolver

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
