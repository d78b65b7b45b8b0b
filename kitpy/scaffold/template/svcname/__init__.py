"""svcname: a kitpy service.

The layers, from the inside out:

* ``service.py``        -- the business logic: a Protocol and a plain implementation.
* ``endpoints.py``      -- one Endpoint per method, request/response types, and an
  ``Endpoints`` set that is itself a ``Service``.
* ``transport_http.py`` -- the endpoints as HTTP/JSON routes (and an HTTP client).
* ``transport_grpc.py`` -- the endpoints as gRPC methods (and a gRPC client).
* ``observability.py``  -- logger, metrics registry and tracer provider, all passed in.
* ``config.py``         -- flags with environment-variable defaults.
* ``__main__.py``       -- build, start, wait for a signal, stop.

Run it with ``python -m svcname``.
"""
