"""stringsvc: the kitpy template service.

Copy this folder, rename it, and replace the business logic in ``service.py``.
The layers, from the inside out:

* ``service.py``   -- the business logic: a Protocol and a plain implementation,
  every method taking the call's Context first.
* ``endpoints.py`` -- one named Endpoint per method, request/response Structs,
  and an ``Endpoints`` set that is itself a ``StringService``.
* ``transport_http.py``, ``transport_grpc.py`` -- the endpoints on the wire.
* ``proxy.py``     -- a service that calls other instances and owns their failures.
* ``__main__.py``  -- the wiring, run by ``kitpy.lifecycle``.

``minimal.py`` is the same service, HTTP only, in one file.
"""
