"""What service discovery finds: an :class:`Instance` is an address plus metadata.

An instance is a value: two instances are equal when address, weight,
priority, zone and metadata are all equal, and equal instances share one
endpoint in an :class:`~kitpy.sd.Endpointer`.  A change of metadata (say a new
weight) therefore looks like "old instance left, new one arrived", which is
what a balancer that reads the metadata needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["Instance"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


class Instance:
    """One reachable copy of a service.

    ``address`` is whatever the endpoint factory needs to reach it, usually
    ``"host:port"``; kitpy.sd never parses it.  ``weight`` (relative share of
    traffic, for weighted balancing) and ``priority`` (lower is preferred; DNS
    SRV semantics) default to 1 and 0.  ``zone`` names a failure domain.
    ``metadata`` holds any other string pairs (version, protocol, ...).

    Example::

        Instance("10.0.0.7:8080", weight=2, zone="eu-1", metadata={"version": "1.4"})
    """

    __slots__ = ("_hash", "address", "metadata", "priority", "weight", "zone")

    address: str
    weight: int
    priority: int
    zone: str
    metadata: Mapping[str, str]

    def __init__(
        self,
        address: str,
        *,
        weight: int = 1,
        priority: int = 0,
        zone: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if not address:
            raise ValueError("an Instance needs a non-empty address")
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        self.address = address
        self.weight = weight
        self.priority = priority
        self.zone = zone
        self.metadata = MappingProxyType(dict(metadata)) if metadata else _EMPTY
        self._hash = hash((address, weight, priority, zone, frozenset(self.metadata.items())))

    def _key(self) -> tuple[Any, ...]:
        return (self.address, self.weight, self.priority, self.zone, dict(self.metadata))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instance):
            return NotImplemented
        return self._hash == other._hash and self._key() == other._key()

    def __hash__(self) -> int:
        return self._hash

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "_hash"):
            raise AttributeError("Instance is immutable")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        extras = []
        if self.weight != 1:
            extras.append(f"weight={self.weight}")
        if self.priority:
            extras.append(f"priority={self.priority}")
        if self.zone:
            extras.append(f"zone={self.zone!r}")
        if self.metadata:
            extras.append(f"metadata={dict(self.metadata)!r}")
        tail = "".join(", " + e for e in extras)
        return f"Instance({self.address!r}{tail})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; :meth:`from_dict` reads it back (used by registry backends)."""
        out: dict[str, Any] = {"address": self.address}
        if self.weight != 1:
            out["weight"] = self.weight
        if self.priority:
            out["priority"] = self.priority
        if self.zone:
            out["zone"] = self.zone
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Instance:
        """Build an Instance from :meth:`to_dict` output; raises ValueError on bad fields."""
        address = data.get("address")
        if not isinstance(address, str):
            raise ValueError("instance record has no string 'address'")
        weight = data.get("weight", 1)
        priority = data.get("priority", 0)
        zone = data.get("zone", "")
        metadata = data.get("metadata") or {}
        if not isinstance(weight, int) or not isinstance(priority, int):
            raise ValueError("instance 'weight' and 'priority' must be integers")
        if not isinstance(zone, str) or not isinstance(metadata, Mapping):
            raise ValueError("instance 'zone' must be a string and 'metadata' an object")
        meta = {str(k): str(v) for k, v in metadata.items()}
        return cls(address, weight=weight, priority=priority, zone=zone, metadata=meta)
