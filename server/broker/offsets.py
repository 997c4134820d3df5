"""Committed offsets of consumer groups, kept as Kafka keeps them: records in the compacted
internal log `__consumer_offsets`, one record per (group, topic, partition), rebuilt into
memory when the store opens.

Records are byte-compatible with Kafka's (coordinator `OffsetCommitKey` / `OffsetCommitValue`)::

    key    int16 version (1), string group, string topic, int32 partition
    value  int16 version (3), int64 offset, int32 leaderEpoch, string metadata,
           int64 commitTimestamp               (null value = tombstone: the offset is gone)

Reading also accepts values v0-v2; keys of other versions (Kafka's group metadata records) are
skipped. One OffsetCommit request is one record batch, so a crash keeps all of it or none.

Durability point: `commit` appends the batch (to the OS) and updates memory, so OffsetFetch
sees it at once; it is durable only after `flush()`, which fsyncs. The caller acknowledges a
commit after a flush that started after the commit returned; many commits can share one flush::

    store = OffsetStore(data_dir / "__consumer_offsets-0")
    store.commit("my-group", [OffsetCommit("chat", 0, 42)], now_ms)
    await asyncio.to_thread(store.flush)   # now reply to the committer
    store.fetch("my-group")                # {("chat", 0): OffsetAndMetadata(42, "", now_ms, -1)}

A failed fsync makes the log refuse further writes (see PartitionLog.flush); the commits that
were not flushed stay in memory but were never acknowledged.

Threading: every method but `flush` and `compact` from one thread (the event loop); `flush` and
`compact` from any thread, as the partition log allows.

Which commits are allowed (generation and member checks) is the group coordinator's business:
see `GroupCoordinator.commit_offsets` in groups.py.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

from dcli.wire.consumer_protocol import ConsumerProtocolError, Reader, Writer
from dcli.wire.records import Record, build_batch, decode_records, iter_batches
from dcli_server.storage.log_config import LogConfig
from dcli_server.storage.segments import PartitionLog

TOPIC = "__consumer_offsets"
KEY_VERSION = 1
VALUE_VERSION = 3
NO_LEADER_EPOCH = -1
# Kafka's offsets.topic.segment.bytes; the topic is compacted, as Kafka creates it.
DEFAULT_LOG_CONFIG = LogConfig(cleanup_policy="compact", segment_bytes=100 * 1024 * 1024)
_READ_CHUNK = 1 << 20


class OffsetCommit(NamedTuple):
    """One partition of an OffsetCommit request: the next offset to read and free text."""

    topic: str
    partition: int
    offset: int
    metadata: str = ""
    leader_epoch: int = NO_LEADER_EPOCH


class OffsetAndMetadata(NamedTuple):
    offset: int
    metadata: str
    commit_timestamp_ms: int
    leader_epoch: int = NO_LEADER_EPOCH


def encode_key(group_id: str, topic: str, partition: int) -> bytes:
    return Writer().int16(KEY_VERSION).string(group_id).string(topic).int32(partition).getvalue()


def decode_key(data: bytes) -> tuple[str, str, int] | None:
    """(group, topic, partition), or None for a key that is not an offset commit."""
    r = Reader(data, "__consumer_offsets key")
    version = r.int16("the key version")
    if version not in (0, 1):
        return None
    key = r.string("group"), r.string("topic"), r.int32("partition")
    r.end(True)
    return key


def encode_value(value: OffsetAndMetadata) -> bytes:
    return (Writer().int16(VALUE_VERSION).int64(value.offset).int32(value.leader_epoch)
            .string(value.metadata).int64(value.commit_timestamp_ms).getvalue())


def decode_value(data: bytes) -> OffsetAndMetadata:
    r = Reader(data, "__consumer_offsets value")
    version = r.int16("the value version")
    if not 0 <= version <= 3:
        raise r.error(f"unsupported offset commit value version {version}")
    offset = r.int64("offset")
    epoch = r.int32("leaderEpoch") if version >= 3 else NO_LEADER_EPOCH
    metadata = r.string("metadata")
    timestamp = r.int64("commitTimestamp")
    if version == 1:
        r.int64("expireTimestamp")
    return OffsetAndMetadata(offset, metadata, timestamp, epoch)


class CommittedOffsets(ABC):
    """The reading side of an offset store, and what follows from `delete_offsets`: the
    committed offsets per group in memory (`_offsets`), whatever keeps them durable."""

    _offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]]

    @abstractmethod
    def delete_offsets(self, group_id: str, partitions: Iterable[tuple[str, int]], now_ms: int) -> int:
        """Delete these committed partitions of the group; how many there were."""

    def delete_group(self, group_id: str, now_ms: int) -> int:
        """Delete every offset of the group (DeleteGroups); how many went."""
        return self.delete_offsets(group_id, list(self._offsets.get(group_id, ())), now_ms)

    def expire(self, group_id: str, now_ms: int, retention_ms: int, *, since_ms: int | None = None,
               keep_topics: frozenset[str] = frozenset()) -> int:
        """Delete the group's offsets older than `retention_ms` (offsets.retention.ms),
        measured from the later of their commit and `since_ms` (when the group became Empty);
        offsets of `keep_topics` (still subscribed) stay. How many went."""
        old = [tp for tp, v in self._offsets.get(group_id, {}).items()
               if tp[0] not in keep_topics
               and now_ms - max(v.commit_timestamp_ms, since_ms if since_ms is not None else -1)
               >= retention_ms]
        return self.delete_offsets(group_id, old, now_ms)

    def fetch(self, group_id: str, partitions: Iterable[tuple[str, int]] | None = None
              ) -> dict[tuple[str, int], OffsetAndMetadata]:
        """The group's committed offsets: all of them, or those of `partitions` that exist."""
        offsets = self._offsets.get(group_id, {})
        if partitions is None:
            return dict(offsets)
        return {tp: offsets[tp] for tp in partitions if tp in offsets}

    def groups(self) -> list[str]:
        """Groups that have committed offsets."""
        return list(self._offsets)

    def has_offsets(self, group_id: str) -> bool:
        return group_id in self._offsets


class OffsetStore(CommittedOffsets):
    """Committed offsets per group, durable in a compacted partition log in `directory`."""

    def __init__(self, directory: Path, config: LogConfig = DEFAULT_LOG_CONFIG, *,
                 clock: Callable[[], int] | None = None) -> None:
        if not config.compacts:
            raise ValueError("the offsets log must be compacted (cleanup.policy=compact)")
        kwargs = {"clock": clock} if clock is not None else {}
        self._log = PartitionLog(Path(directory), config, **kwargs)
        self._offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]] = {}
        self._load()

    def _load(self) -> None:
        offset, end = self._log.log_start_offset, self._log.log_end_offset
        while offset < end:
            data = self._log.read(offset, _READ_CHUNK)
            if not data:
                break
            for h, batch in iter_batches(memoryview(data)):
                for r in decode_records(batch):
                    if r.offset >= offset:
                        self._apply(r.key, r.value)
                offset = h.next_offset

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            parsed = decode_key(key) if key is not None else None
        except ConsumerProtocolError:
            return  # not ours to read; compaction keeps it by its key
        if parsed is None:
            return
        group, topic, partition = parsed
        if value is None:
            offsets = self._offsets.get(group)
            if offsets is not None:
                offsets.pop((topic, partition), None)
                if not offsets:
                    del self._offsets[group]
            return
        self._offsets.setdefault(group, {})[(topic, partition)] = decode_value(value)

    def _append(self, records: list[Record]) -> None:
        if not records:
            return
        self._log.append(build_batch(records))
        for r in records:
            self._apply(r.key, r.value)

    # -- writing ----------------------------------------------------------------------------

    def commit(self, group_id: str, offsets: Iterable[OffsetCommit], now_ms: int) -> None:
        """Append one batch with these offsets and make them visible; durable after flush()."""
        self._append([
            Record(encode_key(group_id, c.topic, c.partition),
                   encode_value(OffsetAndMetadata(c.offset, c.metadata, now_ms, c.leader_epoch)),
                   timestamp=now_ms)
            for c in offsets
        ])

    def delete_offsets(self, group_id: str, partitions: Iterable[tuple[str, int]], now_ms: int) -> int:
        """Write tombstones for these committed partitions of the group; how many there were."""
        known = self._offsets.get(group_id, {})
        gone = [tp for tp in dict.fromkeys(partitions) if tp in known]
        self._append([Record(encode_key(group_id, t, p), None, timestamp=now_ms) for t, p in gone])
        return len(gone)

    def flush(self) -> None:
        """fsync every commit and tombstone appended before this call: the durability point."""
        self._log.flush()

    def compact(self, now_ms: int | None = None) -> int:
        """Compact the closed segments of the log (latest record per key; tombstones older
        than delete.retention.ms go); records removed. Slow: run it off the event loop."""
        return self._log.compact(now_ms)

    @property
    def log(self) -> PartitionLog:
        return self._log

    def close(self) -> None:
        """fsync what is pending and close the log."""
        self._log.close()

    def __enter__(self) -> OffsetStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
