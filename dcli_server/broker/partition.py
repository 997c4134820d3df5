"""One partition: its log, its idempotent producers, and its replication state (leader, epoch,
replicas, in-sync replicas, high watermark), explicit even though one node makes it trivial.

    p = Partition.open(broker_dir / "chat-0", "chat", 0, topic_id, LogConfig(), broker_id=1, replicas=(1,))
    result = p.append(split_batches(records, p.name, p.log.config))   # on the event loop
    p.set_durable(p.log_end_offset); p.set_high_watermark(p.log_end_offset)   # after an fsync
    data = p.read(offset, 1 << 20)                                    # never above the high watermark
    p.detach(UnknownTopicOrPartitionError()); p.log.close()

Two offsets move forward after appends: `durable_offset`, below which the log is fsync'd, and
the `high_watermark`, below which consumers may read. The broker decides how they move (on one
node with fsync "always" they move together after each group fsync, so no consumer sees a
record that a power cut could take back). Waiters are asyncio futures, resolved by those moves:
a produce with acks=all waits for `durable_offset`, a long-poll fetch for the high watermark.
Appends run on the event loop; everything else here is cheap bookkeeping.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import NamedTuple

from dcli.wire.errors import CorruptRecordError, InvalidRecordError, RecordTooLargeError
from dcli.wire.records import (
    MAGIC, NO_PRODUCER_ID, RECORD_BATCH_OVERHEAD, BatchHeader, decode_records, parse_header,
    validate_batch,
)
from dcli_server.broker.producer_state import ProducerStateTable
from dcli_server.storage.log_config import LogConfig
from dcli_server.storage.segments import PartitionLog


class AppendResult(NamedTuple):
    base_offset: int           # of the first batch; the original one for a duplicate
    last_offset: int           # of the last batch
    duplicate: bool


def split_batches(records: bytes, name: str, config: LogConfig) -> list[tuple[BatchHeader, memoryview]]:
    """The record batches of one partition's produce data, each checked (size against
    max.message.bytes first, as Kafka does, then header and CRC) before any is appended."""
    view = memoryview(records)
    end = len(view)
    if end == 0:
        raise CorruptRecordError(message=f"Produce request for partition {name} holds no record batch.")
    out = []
    pos = 0
    while pos < end:
        if end - pos < RECORD_BATCH_OVERHEAD:
            raise CorruptRecordError(message=(
                f"Record batch is corrupt (the size {end - pos} is smaller than the minimum "
                f"allowed overhead {RECORD_BATCH_OVERHEAD})"))
        h = parse_header(view, pos)
        if h.magic == MAGIC and h.size > config.max_message_bytes:
            raise RecordTooLargeError(message=(
                f"The record batch size in the append to {name} is {h.size} bytes which exceeds "
                f"the maximum configured value of {config.max_message_bytes}."))
        if h.magic == MAGIC and h.size >= RECORD_BATCH_OVERHEAD and pos + h.size > end:
            raise CorruptRecordError(message=(
                f"Record batch of {h.size} bytes runs past the end of the {end - pos} bytes left "
                f"in the produce request for partition {name}."))
        batch = view[pos : pos + max(h.size, RECORD_BATCH_OVERHEAD)]
        h = validate_batch(batch)
        if h.is_transactional:
            raise InvalidRecordError(message=(
                f"Transactional record batches are not supported (partition {name})."))
        out.append((h, batch))
        pos += h.size
    return out


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class Partition:
    """One partition of a topic, led by this broker."""

    def __init__(self, topic: str, index: int, topic_id: str, log: PartitionLog,
                 producers: ProducerStateTable, *, broker_id: int, replicas: tuple[int, ...]) -> None:
        self.topic = topic
        self.index = index
        self.topic_id = topic_id
        self.name = f"{topic}-{index}"
        self.log = log
        self.producers = producers
        self.broker_id = broker_id
        self.replicas = tuple(replicas)
        # One node: this broker leads every partition it holds; the others are not there.
        self.leader_id = broker_id if broker_id in self.replicas else -1
        self.leader_epoch = 0
        self.isr = tuple(b for b in self.replicas if b == broker_id)
        self.min_insync_replicas = 1
        end = log.log_end_offset
        self.high_watermark = end
        self.durable_offset = end
        self.failed: BaseException | None = None
        self._durable_waiters: list[tuple[int, asyncio.Future]] = []
        self._data_waiters: set[asyncio.Future] = set()

    @classmethod
    def open(cls, directory: Path, topic: str, index: int, topic_id: str, config: LogConfig, *,
             broker_id: int, replicas: tuple[int, ...]) -> Partition:
        """Open (or create) the log, make what it recovered durable, rebuild the producers."""
        log = PartitionLog(directory, config)
        try:
            # After a kill the last writes may be only in the page cache; they count as the
            # high watermark from now on, so they are fsync'd before anyone reads them.
            last = log.segments[-1].path
            fd = os.open(last, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            producers = ProducerStateTable(log.name)
            producers.rebuild_from(log.batch_headers(log.log_start_offset))
        except BaseException:
            log.close()
            raise
        return cls(topic, index, topic_id, log, producers, broker_id=broker_id, replicas=replicas)

    # -- offsets ----------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    def set_high_watermark(self, offset: int) -> None:
        if offset > self.high_watermark:
            self.high_watermark = offset
            waiters, self._data_waiters = self._data_waiters, set()
            for fut in waiters:
                _resolve(fut)

    def set_durable(self, offset: int) -> None:
        if offset <= self.durable_offset:
            return
        self.durable_offset = offset
        still = []
        for target, fut in self._durable_waiters:
            if target <= offset:
                _resolve(fut)
            elif not fut.done():
                still.append((target, fut))
        self._durable_waiters = still

    async def wait_durable(self, offset: int) -> None:
        """Return once the log is fsync'd below `offset`; raises the partition's failure."""
        await self.durable_future(offset)

    def durable_future(self, offset: int) -> asyncio.Future:
        """A future resolved once the log is fsync'd below `offset` (or failed with the
        partition's failure). The waiter counts from the call on (see `has_waiters`)."""
        fut = asyncio.get_running_loop().create_future()
        if self.failed is not None:
            fut.set_exception(self.failed)
        elif offset <= self.durable_offset:
            fut.set_result(None)
        else:
            self._durable_waiters.append((offset, fut))
        return fut

    def has_waiters(self) -> bool:
        """Someone waits for the next fsync: a produce with acks=all or a long-poll fetch."""
        return bool(self._durable_waiters or self._data_waiters)

    def add_data_waiter(self, fut: asyncio.Future) -> None:
        """`fut` is resolved when the high watermark next moves (or the partition goes)."""
        self._data_waiters.add(fut)

    def discard_data_waiter(self, fut: asyncio.Future) -> None:
        self._data_waiters.discard(fut)

    def detach(self, error: BaseException) -> None:
        """The partition stops serving (deleted, closing, or its disk failed): every waiter
        learns why. The caller closes the log."""
        self.failed = error
        for _, fut in self._durable_waiters:
            if not fut.done():
                fut.set_exception(error)
        self._durable_waiters = []
        waiters, self._data_waiters = self._data_waiters, set()
        for fut in waiters:
            _resolve(fut)

    # -- appending and reading --------------------------------------------------------------

    def append(self, batches: list[tuple[BatchHeader, memoryview]]) -> AppendResult:
        """Append checked batches (see `split_batches`) at the log end. A batch that an
        idempotent producer sent before is not appended again; its original offsets answer.
        Raises OutOfOrderSequenceError, InvalidProducerEpochError and the log's errors; batches
        before the failing one stay appended (a client sends one batch per partition)."""
        if self.failed is not None:
            raise self.failed
        base = last = None
        duplicate = False
        for h, data in batches:
            pid = h.producer_id
            if pid != NO_PRODUCER_ID:
                dup = self.producers.check(pid, h.producer_epoch, h.base_sequence, h.last_sequence,
                                           offset=self.log.log_end_offset)
                if dup is not None:
                    duplicate = True
                    base = dup.base_offset if base is None else base
                    last = dup.last_offset
                    continue
            info = self.log.append(data, leader_epoch=self.leader_epoch, header=h)   # checked by split_batches
            if pid != NO_PRODUCER_ID:
                self.producers.record(pid, h.producer_epoch, h.base_sequence, h.last_sequence,
                                      info.base_offset, info.last_offset)
            base = info.base_offset if base is None else base
            last = info.last_offset
        return AppendResult(base, last, duplicate)

    def read(self, offset: int, max_bytes: int, *, to_log_end: bool = False) -> bytes:
        """Whole batches from the one holding `offset`, below the high watermark (below the
        log end for a follower); raises OffsetOutOfRangeError outside [log start, log end]."""
        if self.failed is not None:
            raise self.failed
        limit = None if to_log_end else self.high_watermark
        return self.log.read(offset, max_bytes, max_offset=limit)

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record at or after `timestamp` below the high
        watermark, as ListOffsets finds it: the first batch whose largest timestamp reaches it,
        then the first record in it that does. None when there is none."""
        if self.failed is not None:
            raise self.failed
        hw = self.high_watermark
        start = self.log.log_start_offset
        for h in self.log.batch_headers(start):
            if h.base_offset >= hw:
                break
            if h.max_timestamp < timestamp:
                continue
            data = self.log.read(max(h.base_offset, start), h.size, max_offset=hw)
            if not data:
                break
            first = parse_header(data)
            for r in decode_records(memoryview(data)[: first.size]):
                if r.timestamp >= timestamp and start <= r.offset < hw:
                    return r.offset, r.timestamp
        return None
