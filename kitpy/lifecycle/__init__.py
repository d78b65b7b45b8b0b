"""Run a service process: start its servers, wait for SIGINT/SIGTERM, stop them in order.

:class:`Lifecycle` is an async context manager.  Inside it, start servers with
the per-transport adapters (:func:`kitpy.lifecycle.http.serve_http`,
:func:`kitpy.lifecycle.grpc.serve_grpc`), register in service discovery, name
what to flush and what to close, and wait for a signal.  On the way out -- after
the signal, or when the body raises -- it stops in the order a load balancer
needs, announcing each step: NOT_SERVING, deregister, drain, refuse new
connections while in-flight calls finish (up to ``grace``), flush, close::

    async with Lifecycle(name="greeter", drain=1.0, grace=10.0) as life:
        session = life.close(aiohttp.ClientSession())
        life.on_shutdown(tracer_provider.shutdown, "spans flushed")
        await serve_http(life, app, host="127.0.0.1", port=8080, health=health)
        await serve_grpc(life, grpc_server, address="127.0.0.1:8081")
        await life.wait_for_signal()

This package imports no third-party library; the adapters import aiohttp
(``kitpy[http]``) and grpc.aio (``kitpy[grpc]``).
"""

from kitpy.lifecycle.core import DEFAULT_SIGNALS, AsyncCloseable, Lifecycle, Server

__all__ = ["DEFAULT_SIGNALS", "AsyncCloseable", "Lifecycle", "Server"]
