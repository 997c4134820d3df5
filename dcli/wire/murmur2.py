"""Kafka's default partitioner for keyed records: MurmurHash2, as `Utils.murmur2` computes it.

A keyed record must land on the partition a Java producer would choose, or consumers that
rely on per-key order across clients would see keys split. kafka.md section 5.1.

    >>> murmur2(b"21"), partition_for_key(b"key", 3)
    (-973932308, 1)
"""
from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 (32-bit, seed 0x9747b28c) of `data` as a signed Java int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    blocks = length // 4
    for i in range(blocks):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> _R
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    base = blocks * 4
    # Java's switch falls through: 3 mixes in bytes 2, 1 and 0; then h *= m once.
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(number: int) -> int:
    """Kafka's Utils.toPositive: clears the sign bit (not abs(): abs(MIN_VALUE) is negative)."""
    return number & 0x7FFFFFFF


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """BuiltInPartitioner.partitionForKey: the partition a keyed record goes to."""
    if num_partitions <= 0:
        raise ValueError(f"number of partitions must be positive, not {num_partitions}")
    return to_positive(murmur2(key)) % num_partitions
