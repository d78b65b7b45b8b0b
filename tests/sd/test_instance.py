"""Instance: a hashable, immutable value with typed metadata and a JSON form."""

from __future__ import annotations

import pytest

from kitpy.sd import Instance


def test_equal_instances_hash_alike_and_metadata_is_part_of_identity() -> None:
    a = Instance("10.0.0.1:80", weight=2, zone="z1", metadata={"v": "1"})
    b = Instance("10.0.0.1:80", weight=2, zone="z1", metadata={"v": "1"})
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != Instance("10.0.0.1:80", weight=3, zone="z1", metadata={"v": "1"})
    assert a != Instance("10.0.0.1:80", weight=2, zone="z1", metadata={"v": "2"})
    assert a != "10.0.0.1:80"


def test_instance_is_immutable_and_does_not_alias_the_callers_dict() -> None:
    meta = {"v": "1"}
    inst = Instance("h:1", metadata=meta)
    meta["v"] = "2"
    assert inst.metadata["v"] == "1"
    with pytest.raises(AttributeError):
        inst.address = "other:1"
    with pytest.raises(TypeError):
        inst.metadata["v"] = "3"  # type: ignore[index]


def test_json_round_trip_and_defaults() -> None:
    inst = Instance("h:1", weight=5, priority=2, zone="eu", metadata={"proto": "http"})
    assert Instance.from_dict(inst.to_dict()) == inst
    assert Instance("h:1").to_dict() == {"address": "h:1"}
    assert repr(inst) == (
        "Instance('h:1', weight=5, priority=2, zone='eu', metadata={'proto': 'http'})"
    )


@pytest.mark.parametrize(
    "data",
    [{}, {"address": 3}, {"address": "h:1", "weight": "x"}, {"address": "h:1", "metadata": [1]}],
)
def test_from_dict_rejects_bad_records(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="instance"):
        Instance.from_dict(data)


def test_constructor_rejects_empty_address_and_negative_weight() -> None:
    with pytest.raises(ValueError, match="address"):
        Instance("")
    with pytest.raises(ValueError, match="weight"):
        Instance("h:1", weight=-1)
