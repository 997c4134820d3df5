"""One partition: its log, its idempotent producers, and its replication state (leader, epoch,
replicas, in-sync replicas, high watermark). The tree says whether this broker leads or
follows (`become_leader`, `become_follower`; the broker makes a partition it opens a follower of
nobody until then). Opened on its own, it leads, as the only replica.

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

Replication, as Kafka does it. A leader learns each follower's log end from the offsets it
fetches at (`follower_fetched`) and keeps the high watermark at the smallest log end in the ISR
(its own counted once durable, with fsync "always"). A follower appends the leader's batches as
stored (`append_replicated`: offsets, leader epochs and producer state travel with them) and,
before fetching from a new leader, truncates where its log diverges: the leader-epoch cache
(`epochs`: each leader epoch and the offset where it starts, rebuilt from the batches' headers)
answers "where does epoch E end" on both sides (`epoch_end`, Kafka's OffsetsForLeaderEpoch).
"""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from dcli.wire.errors import (
    CorruptRecordError, InvalidRecordError, NotLeaderOrFollowerError, RecordTooLargeError,
)
from dcli.wire.records import (
    MAGIC, NO_PRODUCER_ID, RECORD_BATCH_OVERHEAD, BatchHeader, Compression, check_decompressed,
    decode_records, iter_batches, parse_header, validate_batch,
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


def compressed(batches: list[tuple[BatchHeader, memoryview]]) -> bool:
    return any(h.compression != Compression.NONE for h, _ in batches)


def check_decompressed_sizes(batches: list[tuple[BatchHeader, memoryview]], name: str, config: LogConfig) -> None:
    """Refuse (RecordTooLargeError) a compressed batch that is larger than max.message.bytes
    once decompressed; inflating stops one byte past the limit and keeps 64 KiB at a time.
    CPU-bound: the broker calls it in a thread, never on its event loop."""
    for h, data in batches:
        if h.compression != Compression.NONE:
            check_decompressed(data, config.max_message_bytes, f" in the append to {name}")


# A stored batch is read back (ListOffsets by time) within its topic's max.message.bytes and this
# much more: batches were checked against the limit when appended, which may have been raised since.
READ_DECOMPRESSED_MARGIN = 1 << 20


@dataclass
class FollowerProgress:
    """What a leader knows of one follower (Kafka's Replica): its log end from its last fetch,
    and since when it has been caught up."""

    log_end_offset: int = -1            # -1: it has not fetched from this leader yet
    caught_up_at: float = 0.0           # monotonic seconds
    last_fetch_leo: int = -1            # the leader's log end at the follower's last fetch
    last_fetch_at: float = 0.0


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


def _settle_waiters(waiters: list[tuple[int, asyncio.Future]], offset: int) -> list[tuple[int, asyncio.Future]]:
    """Resolve the waiters whose target is at or below `offset`; the rest stay."""
    still = []
    for target, fut in waiters:
        if target <= offset:
            _resolve(fut)
        elif not fut.done():
            still.append((target, fut))
    return still


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
        # Until told otherwise (the broker does at once): the only replica, leading.
        self.leader_id = broker_id if broker_id in self.replicas else -1
        self.leader_epoch = 0
        self.isr = tuple(b for b in self.replicas if b == broker_id)
        self.min_insync_replicas = 1
        self.is_leader = self.leader_id == broker_id
        self.state_version = -1              # of the state znode this replica acts on (cluster)
        self.controller_epoch = 0
        self.followers: dict[int, FollowerProgress] = {}
        self.hw_counts_durable = True        # the leader's own log end counts once fsync'd
        self.epochs: list[tuple[int, int]] = []       # (leader epoch, start offset), ascending
        end = log.log_end_offset
        self.high_watermark = end
        self.durable_offset = end
        self.failed: BaseException | None = None
        self._durable_waiters: list[tuple[int, asyncio.Future]] = []
        self._hw_waiters: list[tuple[int, asyncio.Future]] = []
        self._data_waiters: set[asyncio.Future] = set()
        self._append_waiters: set[asyncio.Future] = set()

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
            headers = log.batch_headers(log.log_start_offset)
            producers = ProducerStateTable(log.name)
            producers.rebuild_from(headers)
        except BaseException:
            log.close()
            raise
        p = cls(topic, index, topic_id, log, producers, broker_id=broker_id, replicas=replicas)
        for h in headers:
            p._note_epoch(h.partition_leader_epoch, h.base_offset)
        if p.epochs:
            p.leader_epoch = p.epochs[-1][0]
        return p

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
            if self._hw_waiters:
                self._hw_waiters = _settle_waiters(self._hw_waiters, offset)

    def update_high_watermark(self) -> None:
        """A leader's high watermark: the smallest log end in the ISR (its own once durable,
        when `hw_counts_durable`); a follower that has not fetched yet holds it where it is."""
        if not self.is_leader:
            return
        hw = self.durable_offset if self.hw_counts_durable else self.log_end_offset
        for b in self.isr:
            if b != self.broker_id:
                f = self.followers.get(b)
                hw = min(hw, f.log_end_offset if f is not None and f.log_end_offset >= 0 else self.high_watermark)
        self.set_high_watermark(hw)

    def hw_future(self, offset: int) -> asyncio.Future:
        """A future resolved once the high watermark reaches `offset` (acks=all in a cluster),
        failed if this replica stops leading or the partition goes."""
        fut = asyncio.get_running_loop().create_future()
        if self.failed is not None:
            fut.set_exception(self.failed)
        elif offset <= self.high_watermark:
            fut.set_result(None)
        else:
            self._hw_waiters.append((offset, fut))
        return fut

    def set_durable(self, offset: int) -> None:
        if offset <= self.durable_offset:
            return
        self.durable_offset = offset
        self._durable_waiters = _settle_waiters(self._durable_waiters, offset)
        if self.is_leader:
            self.update_high_watermark()

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
        return bool(self._durable_waiters or self._data_waiters or self._hw_waiters)

    def add_append_waiter(self, fut: asyncio.Future) -> None:
        """`fut` is resolved at the next append (a follower's long poll)."""
        self._append_waiters.add(fut)

    def discard_append_waiter(self, fut: asyncio.Future) -> None:
        self._append_waiters.discard(fut)

    def _appended(self) -> None:
        if self._append_waiters:
            waiters, self._append_waiters = self._append_waiters, set()
            for fut in waiters:
                _resolve(fut)

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
        self._fail_hw_waiters(error)
        waiters, self._data_waiters = self._data_waiters, set()
        waiters |= self._append_waiters
        self._append_waiters = set()
        for fut in waiters:
            _resolve(fut)

    def _fail_hw_waiters(self, error: BaseException) -> None:
        for _, fut in self._hw_waiters:
            if not fut.done():
                fut.set_exception(error)
        self._hw_waiters = []

    # -- leading and following -------------------------------------------------------------

    def become_leader(self, leader_epoch: int, isr: tuple[int, ...], replicas: tuple[int, ...], *,
                      version: int, controller_epoch: int) -> None:
        """Lead from now on. A new epoch forgets what was known of the followers; the same
        epoch (an ISR change) keeps it."""
        now = time.monotonic()
        if not self.is_leader or leader_epoch != self.leader_epoch:
            self.followers = {}
        self.is_leader = True
        self.leader_id = self.broker_id
        self.leader_epoch = leader_epoch
        self.replicas = tuple(replicas)
        self.isr = tuple(isr)
        self.state_version = version
        self.controller_epoch = controller_epoch
        for b in self.replicas:
            if b != self.broker_id and b not in self.followers:
                self.followers[b] = FollowerProgress(caught_up_at=now)
        self.update_high_watermark()

    def become_follower(self, leader: int, leader_epoch: int, isr: tuple[int, ...],
                        replicas: tuple[int, ...], *, version: int, controller_epoch: int) -> None:
        """Follow `leader` (-1: none yet). Producers waiting for acks=all are told to retry
        with the new leader."""
        if self.is_leader:
            self._fail_hw_waiters(NotLeaderOrFollowerError())
        self.is_leader = False
        self.followers = {}
        self.leader_id = leader
        self.leader_epoch = leader_epoch
        self.replicas = tuple(replicas)
        self.isr = tuple(isr)
        self.state_version = version
        self.controller_epoch = controller_epoch

    def check_leader(self) -> None:
        if not self.is_leader:
            raise NotLeaderOrFollowerError()

    def follower_fetched(self, replica: int, fetch_offset: int) -> bool:
        """A follower fetched at `fetch_offset` (its log end): update its progress and the high
        watermark. True when it is out of the ISR and has caught up (the ISR may grow)."""
        f = self.followers.get(replica)
        if f is None:
            return False
        now = time.monotonic()
        leo = self.log_end_offset
        if fetch_offset >= leo:
            f.caught_up_at = now
        elif fetch_offset >= f.last_fetch_leo >= 0:
            f.caught_up_at = max(f.caught_up_at, f.last_fetch_at)
        f.log_end_offset = min(fetch_offset, leo)
        f.last_fetch_leo, f.last_fetch_at = leo, now
        self.update_high_watermark()
        return (replica not in self.isr and f.log_end_offset >= self.high_watermark
                and f.log_end_offset >= self.epoch_start(self.leader_epoch))

    def lagging(self, max_lag_s: float) -> list[int]:
        """ISR members (not the leader) not caught up within `max_lag_s`."""
        now = time.monotonic()
        return [b for b in self.isr if b != self.broker_id and b in self.followers
                and now - self.followers[b].caught_up_at > max_lag_s]

    # -- the leader-epoch cache ----------------------------------------------------------------

    def _note_epoch(self, epoch: int, start: int) -> None:
        if epoch >= 0 and (not self.epochs or epoch > self.epochs[-1][0]):
            self.epochs.append((epoch, start))

    def epoch_start(self, epoch: int) -> int:
        """Where `epoch` starts in this log (the log end if it has no batch yet)."""
        for e, start in self.epochs:
            if e >= epoch:
                return start
        return self.log_end_offset

    def epoch_end(self, epoch: int) -> tuple[int, int]:
        """(the largest epoch <= `epoch` in this log, the offset where it ends: the next
        epoch's start or the log end); (-1, log start) when there is none."""
        found = -1
        end = self.log_start_offset
        for i, (e, _) in enumerate(self.epochs):
            if e > epoch:
                break
            found = e
            end = self.epochs[i + 1][1] if i + 1 < len(self.epochs) else self.log_end_offset
        if self.is_leader and epoch == self.leader_epoch:
            found, end = epoch, self.log_end_offset
        return found, end

    @property
    def last_epoch(self) -> int:
        return self.epochs[-1][0] if self.epochs else -1

    def truncate(self, offset: int) -> None:
        """Drop the log from `offset` on (a follower's divergent tail); the producer state is
        rebuilt from what stays."""
        if offset >= self.log_end_offset:
            return
        self.log.truncate_to(offset)
        end = self.log_end_offset
        self.epochs = [(e, s) for e, s in self.epochs if s < end]
        self._rebuild_producers()
        self.high_watermark = min(self.high_watermark, end)
        self.durable_offset = min(self.durable_offset, end)

    def restart_at(self, offset: int) -> None:
        """Empty the log and start it at `offset` (the leader's log start is past our end)."""
        self.log.restart_at(offset)
        self.epochs = []
        self._rebuild_producers()
        self.high_watermark = self.durable_offset = offset

    def _rebuild_producers(self) -> None:
        producers = ProducerStateTable(self.log.name)
        producers.rebuild_from(self.log.batch_headers(self.log.log_start_offset))
        self.producers = producers

    def append_replicated(self, records: bytes) -> int:
        """Append the leader's batches as stored; returns how many were appended."""
        if self.failed is not None:
            raise self.failed
        n = 0
        for _, batch in iter_batches(memoryview(records)):     # a torn last batch is left out
            h = validate_batch(batch)
            if h.last_offset < self.log_end_offset:
                continue                      # already here (a fetch answered twice)
            self.log.append_replicated(batch, h)
            self._note_epoch(h.partition_leader_epoch, h.base_offset)
            if h.producer_id != NO_PRODUCER_ID and not h.is_control:
                self.producers.record(h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence,
                                      h.base_offset, h.last_offset)
            n += 1
        return n

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
            self._note_epoch(self.leader_epoch, info.base_offset)
            base = info.base_offset if base is None else base
            last = info.last_offset
        self._appended()
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
            try:
                records = decode_records(memoryview(data)[: first.size],
                                         max_bytes=self.log.config.max_message_bytes + READ_DECOMPRESSED_MARGIN)
            except RecordTooLargeError:         # not inflated: the batch as a whole answers
                return max(first.base_offset, start), first.max_timestamp
            for r in records:
                if r.timestamp >= timestamp and start <= r.offset < hw:
                    return r.offset, r.timestamp
        return None
