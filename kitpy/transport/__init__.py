"""Transports: bind endpoints to the network.

* ``kitpy.transport.http`` -- HTTP/JSON on aiohttp (``pip install "kitpy[http]"``).
* ``kitpy.transport.grpc`` -- gRPC on grpc.aio (``pip install "kitpy[grpc]"``).

Both follow one shape: a **Server** turns an endpoint into a handler (decode the
request, call the endpoint, encode the response, with before/after/finalizer
hooks and one error path), and a **Client** turns a remote method into an
endpoint, so client-side middleware stacks on it.  This package itself imports
nothing; import the transport you need.
"""

__all__: list[str] = []
