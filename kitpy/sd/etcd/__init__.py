"""etcd service discovery: :class:`EtcdRegistrar` and :class:`EtcdInstancer` (``kitpy[etcd]``).

Both talk to etcd through :class:`EtcdClient`, a small client for etcd's v3
JSON gateway on aiohttp (served by etcd >= 3.4 on its client port).  Why the
gateway rather than a gRPC etcd library: it is typed end to end, needs no
protobuf/grpc stack pinned to etcd's generated code (etcd3 0.12 broke on
protobuf 4+; aetcd works but ships no type information), and reconnection is
entirely ours -- one HTTP stream per watch, re-established with our backoff
as soon as etcd is back.  Registry traffic is control-plane traffic, so the
gateway's ~0.4 ms extra per request (measured against aetcd) does not matter.

Layout in etcd: one key per instance, ``prefix + address``, whose value is the
instance as JSON, attached to a lease.
"""

from kitpy.sd.etcd.client import EtcdClient, KeyValue, WatchBatch, prefix_end
from kitpy.sd.etcd.instancer import EtcdInstancer, parse_instance
from kitpy.sd.etcd.registrar import EtcdRegistrar

__all__ = [
    "EtcdClient",
    "EtcdInstancer",
    "EtcdRegistrar",
    "KeyValue",
    "WatchBatch",
    "parse_instance",
    "prefix_end",
]
