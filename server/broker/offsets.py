"""Committed offsets of consumer groups: the records of an OffsetCommit, the interface of the
store that keeps them (CommittedOffsets; TreeOffsetStore, tree_offsets.py, keeps them in the
coordination tree) and a reader of the log in which older versions kept a single node's offsets,
for the migration of such a data directory (migrate.py).

That log was Kafka's compacted internal log `__consumer_offsets` (in `<data-dir>/groups/
__consumer_offsets-0`), one record per (group, topic, partition), byte-compatible with Kafka's
coordinator records (`OffsetCommitKey` / `OffsetCommitValue`)::

    key    int16 version (1), string group, string topic, int32 partition
    value  int16 version (3), int64 offset, int32 leaderEpoch, string metadata,
           int64 commitTimestamp               (null value = tombstone: the offset is gone)

Reading accepts values v0-v3; keys of other versions (Kafka's group metadata records) are skipped.

    offsets = read_offsets_log(data_dir / "groups" / "__consumer_offsets-0")
    offsets["my-group"][("chat", 0)]      # OffsetAndMetadata(42, "", 1700000000000, -1)

Which commits are allowed (generation and member checks) is the group coordinator's business:
see `GroupCoordinator.commit_offsets` in groups.py.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterable, NamedTuple

from dcli.wire.consumer_protocol import ConsumerProtocolError, Reader, Writer
from dcli.wire.records import decode_records, iter_batches
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
    """The offset store the group coordinator uses: the committed offsets per group in memory
    (`_offsets`), made durable by `flush`. `commit` and `delete_offsets` change memory at once;
    the caller acknowledges them after a `flush` that began after they returned. A store may
    keep the groups another broker coordinates elsewhere: `load` reads one before this broker
    coordinates it (in coordination epoch `epoch`), `forget` drops it when it moves away."""

    _offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]]

    @abstractmethod
    def commit(self, group_id: str, offsets: Iterable[OffsetCommit], now_ms: int) -> None:
        """Record these offsets, visible at once; durable after `flush`."""

    @abstractmethod
    def flush(self) -> None:
        """Make every change made before this call durable (in a thread: it may wait)."""

    def loaded(self, group_id: str, epoch: int = 0) -> bool:
        return True

    def load(self, group_id: str, epoch: int = 0) -> None:
        """Read the group's offsets before coordinating it (in a thread)."""

    def forget(self, group_id: str) -> None:
        """Another broker coordinates the group now: drop it from memory."""

    def close(self) -> None:
        """Release what the store holds (after a last `flush`)."""

    def group_ids(self) -> list[str]:
        """Every group with committed offsets, wherever kept (in a thread)."""
        return self.groups()

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


def read_offsets_log(directory: Path) -> dict[str, dict[tuple[str, int], OffsetAndMetadata]]:
    """Every committed offset in a `__consumer_offsets` log directory, the last record of each
    key winning and tombstones removing. A torn tail (a crash mid-append) is cut off by the
    log's recovery, as it was when the log was the store."""
    out: dict[str, dict[tuple[str, int], OffsetAndMetadata]] = {}
    partition_log = PartitionLog(Path(directory), DEFAULT_LOG_CONFIG)
    try:
        offset, end = partition_log.log_start_offset, partition_log.log_end_offset
        while offset < end:
            data = partition_log.read(offset, _READ_CHUNK)
            if not data:
                break
            for h, batch in iter_batches(memoryview(data)):
                for r in decode_records(batch):
                    if r.offset >= offset:
                        _apply(out, r.key, r.value)
                offset = h.next_offset
    finally:
        partition_log.close()
    return out


def _apply(offsets: dict, key: bytes | None, value: bytes | None) -> None:
    try:
        parsed = decode_key(key) if key is not None else None
    except ConsumerProtocolError:
        return  # not ours to read
    if parsed is None:
        return
    group, topic, partition = parsed
    if value is None:
        found = offsets.get(group)
        if found is not None:
            found.pop((topic, partition), None)
            if not found:
                del offsets[group]
        return
    offsets.setdefault(group, {})[(topic, partition)] = decode_value(value)
