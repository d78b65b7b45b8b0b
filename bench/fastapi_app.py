"""stringsvc's uppercase on FastAPI + uvicorn, instrumented the way FastAPI users usually do it.

The comparison point for kitpy's full stack in ``bench/report.py``:

* a pydantic model in and out (unknown fields refused, like kitpy's strict decoder;
  an empty string is a 400);
* prometheus-fastapi-instrumentator on its own ``CollectorRegistry`` (``/metrics``);
* opentelemetry-instrumentation-fastapi with the tracer provider of
  :func:`bench.fullstack.tracer_provider` -- ``ParentBased(TraceIdRatioBased(0.1))``,
  spans batched to an exporter that drops them, exactly as the kitpy variants;
* uvicorn with its usual production setup, ``uvicorn[standard]`` (uvloop and
  httptools when installed), one worker, and its access log -- one line per
  request -- written to ``/dev/null`` (kitpy writes its log line there too).

It does not verify a JWT, and has no breaker or limiter: kitpy's full stack
pays for those on top, so the comparison leans in FastAPI's favour.

Run on its own (prints the port, stops when stdin closes)::

    python bench/fastapi_app.py
"""

from __future__ import annotations

import os
import sys

_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
# As in bench/fullstack.py: bench/jwt.py must not shadow pyjwt; the repository root is importable.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _BENCH_DIR]
sys.path.insert(0, os.path.dirname(_BENCH_DIR))

import asyncio
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from pydantic import BaseModel, ConfigDict

__all__ = ["UppercaseRequest", "UppercaseResponse", "make_app", "make_server", "uvicorn_config"]


class UppercaseRequest(BaseModel):
    """``{"s": ...}``; other fields are refused (422), as kitpy's decoder refuses them (400)."""

    model_config = ConfigDict(extra="forbid")
    s: str


class UppercaseResponse(BaseModel):
    """``{"v": ...}``."""

    v: str


def make_app(
    *, registry: CollectorRegistry | None = None, provider: TracerProvider | None = None
) -> FastAPI:
    """The instrumented FastAPI app: ``POST /uppercase`` and ``GET /metrics``.

    ``registry`` and ``provider`` default to new ones (nothing global is touched;
    OpenTelemetry metrics go to a no-op meter provider, Prometheus does metrics).
    """
    from bench.fullstack import tracer_provider

    app = FastAPI()

    @app.post("/uppercase")
    async def uppercase(request: UppercaseRequest) -> UppercaseResponse:
        if not request.s:
            raise HTTPException(status_code=400, detail="empty string")
        return UppercaseResponse(v=request.s.upper())

    Instrumentator(registry=registry or CollectorRegistry()).instrument(app).expose(app)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider or tracer_provider(),
        meter_provider=NoOpMeterProvider(),
    )
    return app


def uvicorn_config(app: FastAPI, *, access_log_path: str = os.devnull) -> uvicorn.Config:
    """uvicorn's usual single-worker setup, its access log going to ``access_log_path``."""
    log_config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
                "use_colors": False,
            },
        },
        "handlers": {
            "access": {
                "formatter": "access",
                "class": "logging.FileHandler",
                "filename": access_log_path,
            },
        },
        "loggers": {
            "uvicorn": {"level": "WARNING"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
    return uvicorn.Config(app, log_config=log_config, access_log=True, lifespan="off")


def make_server(app: FastAPI) -> tuple[uvicorn.Server, socket.socket]:
    """A uvicorn server for ``app`` and a listening socket on a free 127.0.0.1 port.

    Start it with ``await server.serve(sockets=[sock])``; stop it with
    ``server.should_exit = True``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return uvicorn.Server(uvicorn_config(app)), sock


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    print(sock.getsockname()[1], flush=True)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    server.should_exit = True
    await task


def main() -> None:
    server, sock = make_server(make_app())
    # the event loop uvicorn itself would run: uvloop when installed
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(_serve(server, sock))


if __name__ == "__main__":
    main()
