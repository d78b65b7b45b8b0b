"""Service discovery and client-side load balancing.

The pieces, each replaceable:

* :class:`Instance` -- an address plus metadata (weight, priority, zone, ...).
* :class:`Instancer` -- a source of the current instance set; subscribers get a
  stream of :class:`Event` (full set, or error).  Backends: :mod:`kitpy.sd.fixed`
  (static list, no dependencies), :mod:`kitpy.sd.etcd` (``kitpy[etcd]``),
  :mod:`kitpy.sd.dnssrv` (``kitpy[dns]``).  :class:`Publisher` is the fan-out
  they share, and a hand-driven instancer for tests.
* :class:`Registrar` -- announces this process, keeping a lease/TTL alive.
* :class:`Endpointer` -- one endpoint per instance through the caller's
  ``factory(instance) -> (endpoint, closer)``; kitpy.sd never imports a transport.
* Balancers -- :class:`RoundRobin`, :class:`Random`, :class:`WeightedRandom`
  (RFC 2782) and :class:`P2C` (power of two choices, least loaded by in-flight
  requests or peak EWMA latency); all raise ``Unavailable("no endpoints")`` on
  an empty set.
* :func:`balanced` and :func:`lb_retry` -- endpoints that pick per call, the
  latter with :func:`kitpy.resilience.retry` so each attempt may land elsewhere
  (the one use of :mod:`kitpy.resilience` in ``kitpy.sd``).

Putting it together for an HTTP upstream::

    instancer = EtcdInstancer(etcd, "/services/stringsvc/")
    endpointer = Endpointer(instancer, http_factory)     # factory builds a client per instance
    uppercase = lb_retry(P2C(endpointer), max_attempts=3, name="uppercase")
    await uppercase(Context().with_timeout(1.0), UppercaseRequest("hi"))

Importing ``kitpy.sd`` pulls in no third-party package; the etcd and DNS
backends are separate modules behind their extras.
"""

from kitpy.sd.balancer import (
    Balancer,
    EndpointSource,
    InstanceSource,
    Random,
    RoundRobin,
    WeightedRandom,
)
from kitpy.sd.endpointer import Closer, Endpointer, ErrorReporter, Factory
from kitpy.sd.fixed import FixedInstancer
from kitpy.sd.instance import Instance
from kitpy.sd.instancer import BackgroundInstancer, Event, Instancer, Publisher
from kitpy.sd.lb import balanced, lb_retry
from kitpy.sd.p2c import P2C
from kitpy.sd.registrar import Registrar

__all__ = [
    "BackgroundInstancer",
    "P2C",
    "Balancer",
    "Closer",
    "EndpointSource",
    "Endpointer",
    "ErrorReporter",
    "Event",
    "Factory",
    "FixedInstancer",
    "Instance",
    "InstanceSource",
    "Instancer",
    "Publisher",
    "Random",
    "Registrar",
    "RoundRobin",
    "WeightedRandom",
    "balanced",
    "lb_retry",
]
