"""A service instance for the etcd tests, run as its own process so it can be SIGKILLed.

``python -m tests.sd.instance_app ETCD_URL PREFIX NAME TTL`` serves the
``tests.sd.upper`` app on an ephemeral 127.0.0.1 port, registers itself in
etcd with a ``TTL``-second lease, prints ``READY host:port`` and runs until
SIGTERM (deregisters at once, then stops serving) or SIGKILL (nothing is
revoked: the lease expires after the TTL).
"""

from __future__ import annotations

import asyncio
import signal
import sys

from kitpy.sd import Instance
from kitpy.sd.etcd import EtcdClient, EtcdRegistrar
from kitpy.transport.http import start_app
from tests.sd.upper import make_app


async def main(etcd_url: str, prefix: str, name: str, ttl: int) -> None:
    running = await start_app(make_app(name), port=0, grace_period=2.0, access_log=None)
    address = "{}:{}".format(*running.addresses[0])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with EtcdClient(etcd_url) as etcd:
        instance = Instance(address, metadata={"name": name})
        async with EtcdRegistrar(etcd, prefix, instance, ttl=ttl):
            print(f"READY {address}", flush=True)
            await stop.wait()
    await running.stop()  # deregistered first, then drain: like a well-behaved instance


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
