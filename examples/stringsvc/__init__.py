"""stringsvc: the kitpy template service.

Copy this folder, rename it, and replace the business logic in ``service.py``.
The layers, from the inside out:

* ``service.py``   -- the business logic: a Protocol and a plain implementation.
* ``endpoints.py`` -- one Endpoint per method, request/response Structs,
  and an ``Endpoints`` set that is itself a ``StringService``.
* transports and wiring arrive in ``transport_*.py`` and ``__main__.py``.
"""
