"""ProduceRequest written by hand: the same bytes the generated class writes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dcli.v1 import broker_pb2 as bpb
from dcli.wire.produce_request import _varint, encode_produce_request

int32 = st.integers(-(2**31), 2**31 - 1)
partitions = st.lists(st.tuples(st.text(max_size=30), st.integers(0, 2**31 - 1),
                                st.binary(max_size=300)), max_size=5)


@given(st.sampled_from([-1, 0, 1]) | int32, st.integers(0, 2**31 - 1) | int32, partitions)
def test_the_bytes_are_the_generated_classs(acks, timeout_ms, parts):
    expected = bpb.ProduceRequest(acks=acks, timeout_ms=timeout_ms, partitions=[
        bpb.PartitionRecords(topic=t, partition=p, records=r) for t, p, r in parts])
    data = encode_produce_request(acks, timeout_ms, parts)
    assert data == expected.SerializeToString()
    assert bpb.ProduceRequest.FromString(data) == expected


def test_long_records_and_negative_acks():
    records = bytes(range(256)) * 700                  # a length of three varint bytes
    data = encode_produce_request(-1, 30000, [("chat", 5, records), ("chat", 0, b"")])
    request = bpb.ProduceRequest.FromString(data)
    assert (request.acks, request.timeout_ms) == (-1, 30000)
    assert [(p.topic, p.partition, p.records) for p in request.partitions] == [("chat", 5, records), ("chat", 0, b"")]


def test_varints():
    assert _varint(0) == b"\x00" and _varint(127) == b"\x7f" and _varint(300) == b"\xac\x02"
    assert _varint(-1) == b"\xff" * 9 + b"\x01"
