"""A ProduceRequest (proto/dcli/v1/broker.proto) written straight to its protobuf wire bytes.

Record batches are nearly all of a Produce request. Built through the generated class, each
batch is copied into the message and copied again when it is serialized, and serializing a
request of several 16 KiB batches takes tens of microseconds on the producer's sender thread,
where every microsecond is one the application's thread waits for the interpreter's lock. Here
the batches are copied once, by one `join`. The bytes are those the generated class writes
(fields in number order, zero values left out), which tests check.

    data = encode_produce_request(1, 30000, [("chat", 0, batch)])
    stub = channel.unary_unary("/dcli.v1.Broker/Produce", response_deserializer=...)  # no serializer
    stub(data)
"""
from __future__ import annotations

from typing import Iterable

_LEN = 2          # wire type of strings, bytes and messages
_VARINT = 0
_ACKS = bytes((1 << 3 | _VARINT,))
_TIMEOUT = bytes((2 << 3 | _VARINT,))
_PARTITIONS = bytes((3 << 3 | _LEN,))
_TOPIC = bytes((1 << 3 | _LEN,))
_PARTITION = bytes((2 << 3 | _VARINT,))
_RECORDS = bytes((3 << 3 | _LEN,))


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint; a negative int32 is written as its 64-bit two's complement
    (ten bytes), as protobuf does."""
    if value < 0:
        value += 1 << 64
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_produce_request(acks: int, timeout_ms: int, partitions: Iterable[tuple[str, int, bytes]]) -> bytes:
    """The wire bytes of ProduceRequest(acks, timeout_ms, partitions=[PartitionRecords(topic,
    partition, records), ...])."""
    parts: list[bytes] = []
    if acks:
        parts += (_ACKS, _varint(acks))
    if timeout_ms:
        parts += (_TIMEOUT, _varint(timeout_ms))
    for topic, partition, records in partitions:
        fields = []
        if topic:
            name = topic.encode()
            fields += (_TOPIC, _varint(len(name)), name)
        if partition:
            fields += (_PARTITION, _varint(partition))
        head = b"".join(fields)
        if records:
            head += _RECORDS + _varint(len(records))
            parts += (_PARTITIONS, _varint(len(head) + len(records)), head, records)
        else:
            parts += (_PARTITIONS, _varint(len(head)), head)
    return b"".join(parts)
