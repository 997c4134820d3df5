"""ConsumerProtocol Subscription and Assignment: exact bytes, round trips, newer versions,
and clear errors on every kind of malformed input."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcli.wire.consumer_protocol import (
    Assignment, ConsumerProtocolError, Subscription, decode_assignment, decode_subscription,
    encode_assignment, encode_subscription,
)


def kstr(s: str) -> bytes:
    data = s.encode()
    return struct.pack(">h", len(data)) + data


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


# -- exact bytes ------------------------------------------------------------------------------------


def test_subscription_v0_bytes():
    data = encode_subscription(Subscription(["chat", "orders"], user_data=b"\x01\x02"))
    assert data == i16(0) + i32(2) + kstr("chat") + kstr("orders") + i32(2) + b"\x01\x02"


def test_subscription_v0_null_user_data_is_minus_one():
    assert encode_subscription(Subscription(["t"])) == i16(0) + i32(1) + kstr("t") + i32(-1)


def test_assignment_v0_bytes():
    data = encode_assignment(Assignment({"chat": [0, 2], "orders": [1]}))
    assert data == (i16(0) + i32(2) + kstr("chat") + i32(2) + i32(0) + i32(2)
                    + kstr("orders") + i32(1) + i32(1) + i32(-1))


def test_subscription_v3_bytes():
    sub = Subscription(["t"], b"", owned_partitions={"t": [3]}, generation_id=7, rack_id="r1",
                       version=3)
    assert encode_subscription(sub) == (i16(3) + i32(1) + kstr("t") + i32(0) + i32(1) + kstr("t")
                                        + i32(1) + i32(3) + i32(7) + kstr("r1"))
    assert decode_subscription(encode_subscription(sub)) == sub


def test_decode_what_another_client_sent():
    # Built by hand the way kafka-python's ConsumerProtocolMemberMetadata v0 writes it.
    raw = i16(0) + i32(1) + kstr("payments") + i32(0)
    assert decode_subscription(raw) == Subscription(("payments",), b"")


# -- round trips ------------------------------------------------------------------------------------

topics = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
partition_lists = st.lists(st.integers(-(2**31), 2**31 - 1), max_size=5)
user_data = st.one_of(st.none(), st.binary(max_size=30))


@given(st.lists(topics, max_size=6), user_data,
       st.lists(st.tuples(topics, partition_lists), max_size=4),
       st.integers(-(2**31), 2**31 - 1), st.one_of(st.none(), topics), st.integers(0, 3))
def test_subscription_round_trip(topic_list, data, owned, generation, rack, version):
    sub = Subscription(topic_list, data,
                       owned if version >= 1 else (),
                       generation if version >= 2 else -1,
                       rack if version >= 3 else None, version)
    assert decode_subscription(encode_subscription(sub)) == sub


@given(st.dictionaries(topics, partition_lists, max_size=6), user_data, st.integers(0, 3))
def test_assignment_round_trip(partitions, data, version):
    a = Assignment(partitions, data, version)
    back = decode_assignment(encode_assignment(a))
    assert back == a
    assert back.partitions == {t: tuple(p) for t, p in partitions.items()}


def test_empty_bytes_are_an_empty_assignment():
    assert decode_assignment(b"") == Assignment({}, None, 0)


def test_a_topic_listed_twice_keeps_every_partition():
    raw = i16(0) + i32(2) + kstr("t") + i32(1) + i32(0) + kstr("t") + i32(1) + i32(5) + i32(-1)
    assert decode_assignment(raw).partitions == {"t": (0, 5)}


# -- newer versions -----------------------------------------------------------------------------------


def test_newer_subscription_version_reads_as_the_newest_known_and_ignores_the_rest():
    v3 = encode_subscription(Subscription(["t"], None, {"t": [1]}, 4, "rack", version=3))
    future = i16(9) + v3[2:] + b"future fields"
    sub = decode_subscription(future)
    assert (sub.topics, sub.owned_partitions, sub.generation_id, sub.rack_id, sub.version) == (
        ("t",), (("t", (1,)),), 4, "rack", 3)


def test_newer_assignment_version_ignores_trailing_fields():
    body = encode_assignment(Assignment({"t": [0]}))[2:]
    assert decode_assignment(i16(4) + body + b"\x00\x01").partitions == {"t": (0,)}


def test_known_version_with_trailing_bytes_is_refused():
    with pytest.raises(ConsumerProtocolError, match="2 unexpected bytes after the last field"):
        decode_subscription(encode_subscription(Subscription(["t"])) + b"xx")


def test_cannot_encode_unknown_versions():
    with pytest.raises(ConsumerProtocolError):
        encode_subscription(Subscription(["t"], version=4))
    with pytest.raises(ConsumerProtocolError):
        encode_assignment(Assignment({}, version=-1))


# -- malformed input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["subscription", "assignment"])
def test_every_truncation_is_a_clear_error(kind):
    if kind == "subscription":
        data = encode_subscription(Subscription(["chat", "x"], b"ud", {"chat": [1, 2]}, 3, "r", 3))
        decode = decode_subscription
    else:
        data = encode_assignment(Assignment({"chat": [1, 2], "x": [0]}, b"ud"))
        decode = decode_assignment
    for cut in range(1, len(data)):
        with pytest.raises(ConsumerProtocolError, match=f"malformed consumer {kind} at byte"):
            decode(data[:cut])


@pytest.mark.parametrize("raw, problem", [
    (i16(-1) + i32(0) + i32(-1), "unsupported version -1"),
    (i16(0) + i32(-1) + i32(-1), "non-nullable array topics has length -1"),
    (i16(0) + i32(1_000_000) + i32(-1), "claims 1000000 elements"),
    (i16(0) + i32(1) + i16(-1) + i32(-1), "invalid length -1 for non-nullable string a topic"),
    (i16(0) + i32(1) + i16(2) + b"\xff\xfe" + i32(-1), "a topic is not UTF-8"),
    (i16(0) + i32(0) + i32(-2), "invalid length -2 for bytes userData"),
])
def test_malformed_subscriptions(raw, problem):
    with pytest.raises(ConsumerProtocolError, match=problem):
        decode_subscription(raw)


def test_malformed_assignment_partition_count():
    raw = i16(0) + i32(1) + kstr("t") + i32(-5) + i32(-1)
    with pytest.raises(ConsumerProtocolError, match="partitions of assignedPartitions has length -5"):
        decode_assignment(raw)


def test_error_is_a_value_error():
    assert issubclass(ConsumerProtocolError, ValueError)
