"""Idempotent producers, per partition (KIP-98; kafka.md section 5.4).

A producer with an id numbers its batches per partition from sequence 0. A retried batch that
the log already holds must not be appended twice, and a batch after a lost one must not be
appended at all. For each producer id the table keeps its epoch and the last five batches
(Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN; hence max.in.flight <= 5 with idempotence).

    table = ProducerStateTable("chat-0")
    dup = table.check(pid, epoch, header.base_sequence, header.last_sequence, offset=log.log_end_offset)
    if dup is not None:
        return dup.base_offset               # answer the retry with the original offsets
    info = log.append(batch)
    table.record(pid, epoch, header.base_sequence, header.last_sequence,
                 info.base_offset, info.last_offset)

The rules are Kafka's ProducerAppendInfo's for client appends: an older epoch is refused; a new
epoch must start at sequence 0 (unless the producer was unknown); within an epoch the first
sequence must follow the last one (wrapping at Int32.MAX). A producer the table has never seen
may start at any sequence, as Kafka allows once its state was removed by retention.

The table survives a restart through `to_bytes`/`from_bytes`, or is rebuilt from the headers of
the batches in the log (`rebuild_from`).
"""
from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

from crc32c import crc32c

from dcli.wire.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from dcli.wire.records import INT32_MAX, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, BatchHeader

BATCHES_TO_RETAIN = 5


class Duplicate(NamedTuple):
    """The batch was appended before: the offsets it got then."""

    base_offset: int
    last_offset: int


class BatchMetadata(NamedTuple):
    first_seq: int
    last_seq: int
    base_offset: int
    last_offset: int


@dataclass
class ProducerEntry:
    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=BATCHES_TO_RETAIN))

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    def find(self, first_seq: int, last_seq: int) -> BatchMetadata | None:
        for b in self.batches:
            if b.first_seq == first_seq and b.last_seq == last_seq:
                return b
        return None


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class CorruptProducerSnapshotError(ValueError):
    """A snapshot that does not read back; the caller rebuilds the table from the log."""


_SNAPSHOT_MAGIC = b"DPS1"
_SNAPSHOT_HEAD = struct.Struct(">4sIi")  # magic, crc32c of everything after, producer count
_PRODUCER = struct.Struct(">qhB")  # producer id, epoch, number of batches
_BATCH = struct.Struct(">iiqq")  # first seq, last seq, base offset, last offset


class ProducerStateTable:
    """Idempotent-producer state of one partition; `partition` names it in messages."""

    def __init__(self, partition: str = "") -> None:
        self.partition = partition
        self._producers: dict[int, ProducerEntry] = {}

    def __len__(self) -> int:
        return len(self._producers)

    def entry(self, producer_id: int) -> ProducerEntry | None:
        return self._producers.get(producer_id)

    def check(
        self, producer_id: int, epoch: int, first_seq: int, last_seq: int, *, offset: int = -1
    ) -> Duplicate | None:
        """None when the batch may be appended, Duplicate when it was appended before; raises
        InvalidProducerEpochError or OutOfOrderSequenceError. `offset` is where it would go
        (the log end offset); it only appears in messages."""
        if producer_id == NO_PRODUCER_ID:
            return None
        entry = self._producers.get(producer_id)
        if entry is None:
            return None
        if epoch == entry.epoch:
            seen = entry.find(first_seq, last_seq)
            if seen is not None:
                return Duplicate(seen.base_offset, seen.last_offset)
        if epoch < entry.epoch:
            raise InvalidProducerEpochError(message=(
                f"Epoch of producer {producer_id} at offset {offset} in {self.partition} is "
                f"{epoch}, which is smaller than the last seen epoch {entry.epoch}"))
        if epoch != entry.epoch:
            if first_seq != 0 and entry.epoch != NO_PRODUCER_EPOCH:
                raise OutOfOrderSequenceError(message=(
                    f"Invalid sequence number for new epoch of producer {producer_id} at offset "
                    f"{offset} in partition {self.partition}: {epoch} (request epoch), "
                    f"{first_seq} (seq. number), {entry.epoch} (current producer epoch)"))
        elif entry.epoch != NO_PRODUCER_EPOCH and not in_sequence(entry.last_seq, first_seq):
            raise OutOfOrderSequenceError(message=(
                f"Out of order sequence number for producer {producer_id} at offset {offset} in "
                f"partition {self.partition}: {first_seq} (incoming seq. number), "
                f"{entry.last_seq} (current end sequence number)"))
        return None

    def record(
        self, producer_id: int, epoch: int, first_seq: int, last_seq: int,
        base_offset: int, last_offset: int,
    ) -> None:
        """Remember a batch that was appended (after `check` said so, or from the log)."""
        if producer_id == NO_PRODUCER_ID:
            return
        entry = self._producers.get(producer_id)
        if entry is None:
            entry = self._producers[producer_id] = ProducerEntry(epoch)
        elif epoch != entry.epoch:
            # A new epoch starts a new sequence: the old batches can no longer match.
            entry.epoch = epoch
            entry.batches.clear()
        entry.batches.append(BatchMetadata(first_seq, last_seq, base_offset, last_offset))

    def rebuild_from(self, headers: Iterable[BatchHeader]) -> None:
        """Replay batch headers read from the log, oldest first, without checks (the log holds
        what was accepted)."""
        for h in headers:
            if h.producer_id != NO_PRODUCER_ID and not h.is_control:
                self.record(h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence,
                            h.base_offset, h.last_offset)

    # -- snapshots --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        body = bytearray()
        for pid, entry in self._producers.items():
            body += _PRODUCER.pack(pid, entry.epoch, len(entry.batches))
            for b in entry.batches:
                body += _BATCH.pack(*b)
        count = struct.pack(">i", len(self._producers))
        return _SNAPSHOT_MAGIC + struct.pack(">I", crc32c(count + body)) + count + bytes(body)

    @classmethod
    def from_bytes(cls, data: bytes, partition: str = "") -> ProducerStateTable:
        if len(data) < _SNAPSHOT_HEAD.size:
            raise CorruptProducerSnapshotError(f"snapshot of {len(data)} bytes is too short")
        magic, crc, count = _SNAPSHOT_HEAD.unpack_from(data)
        if magic != _SNAPSHOT_MAGIC:
            raise CorruptProducerSnapshotError(f"bad snapshot marker {magic!r}")
        if crc32c(memoryview(data)[8:]) != crc:
            raise CorruptProducerSnapshotError("snapshot CRC mismatch")
        table = cls(partition)
        pos = _SNAPSHOT_HEAD.size
        try:
            for _ in range(count):
                pid, epoch, n = _PRODUCER.unpack_from(data, pos)
                pos += _PRODUCER.size
                entry = table._producers[pid] = ProducerEntry(epoch)
                for _ in range(n):
                    entry.batches.append(BatchMetadata(*_BATCH.unpack_from(data, pos)))
                    pos += _BATCH.size
        except struct.error as exc:
            raise CorruptProducerSnapshotError(f"snapshot ends early: {exc}") from None
        if pos != len(data):
            raise CorruptProducerSnapshotError(f"{len(data) - pos} stray bytes after the snapshot")
        return table
