"""Committed offsets: the record bytes Kafka writes to __consumer_offsets, the reader of the log
in which older single-node servers kept them (for the migration: the last record of a key wins,
tombstones remove, a torn tail loses only what was never flushed, older value versions read,
group metadata skipped), and expiry as the offset store interface computes it."""
from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from dcli.wire.records import Record, build_batch
from dcli_server.broker.offsets import (
    DEFAULT_LOG_CONFIG, CommittedOffsets, OffsetAndMetadata, OffsetCommit, decode_key, decode_value, encode_key, encode_value,
    read_offsets_log,
)
from dcli_server.storage.segments import PartitionLog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from legacy_layout import write_old_offsets  # noqa: E402

DAY = 24 * 60 * 60 * 1000


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "__consumer_offsets-0"


def test_record_bytes_are_kafkas():
    key = encode_key("g", "chat", 2)
    assert key == struct.pack(">hh", 1, 1) + b"g" + struct.pack(">h", 4) + b"chat" + struct.pack(">i", 2)
    value = encode_value(OffsetAndMetadata(42, "md", 1700, 5))
    assert value == struct.pack(">hqih", 3, 42, 5, 2) + b"md" + struct.pack(">q", 1700)
    assert decode_key(key) == ("g", "chat", 2)
    assert decode_value(value) == OffsetAndMetadata(42, "md", 1700, 5)


def test_the_last_record_of_a_key_wins_and_tombstones_remove(directory):
    v = OffsetAndMetadata
    write_old_offsets(directory, [
        [("g", "t", 0, v(1, "", 10)), ("g", "t", 1, v(2, "", 10)), ("gone", "t", 0, v(3, "", 10))],
        [("g", "t", 0, v(5, "m", 20)), ("gone", "t", 0, None), ("g", "t", 1, None)],
    ])
    assert read_offsets_log(directory) == {"g": {("t", 0): v(5, "m", 20)}}


def test_a_torn_tail_keeps_every_flushed_commit(directory):
    def batch(i, *partitions):
        return build_batch([Record(encode_key("g", "t", p), encode_value(OffsetAndMetadata(i, "", 1000 + i)), (), 1)
                            for p in partitions])
    with PartitionLog(directory, DEFAULT_LOG_CONFIG) as log:
        for i in range(5):
            log.append(batch(i, 0))
        log.flush()
        flushed_size = log.size_bytes
        log.append(batch(999, 0, 1))
        full_size = log.size_bytes
    segment = directory / "00000000000000000000.log"
    for cut in (full_size - 1, (flushed_size + full_size) // 2, flushed_size + 1):
        with open(segment, "r+b") as f:
            f.truncate(cut)       # a crash part way through the last append
        assert read_offsets_log(directory) == {"g": {("t", 0): OffsetAndMetadata(4, "", 1004)}}


def test_reads_older_value_versions_and_skips_group_metadata(directory):
    v1 = struct.pack(">hqh", 1, 7, 1) + b"x" + struct.pack(">qq", 1234, 99999)
    v0 = struct.pack(">hqh", 0, 8, 0) + struct.pack(">q", 55)
    group_metadata_key = struct.pack(">hh", 2, 1) + b"g"
    assert decode_value(v1) == OffsetAndMetadata(7, "x", 1234)
    assert decode_key(group_metadata_key) is None
    with PartitionLog(directory, DEFAULT_LOG_CONFIG) as log:
        log.append(build_batch([Record(encode_key("g", "t", 0), v1, (), 1),
                                Record(encode_key("g", "t", 1), v0, (), 1),
                                Record(group_metadata_key, b"opaque", (), 1)]))
    assert read_offsets_log(directory) == {"g": {("t", 0): OffsetAndMetadata(7, "x", 1234),
                                                 ("t", 1): OffsetAndMetadata(8, "", 55)}}


class Offsets(CommittedOffsets):
    """The interface's own logic (expiry, deletion of a group) over a dict."""

    def __init__(self):
        self._offsets = {}

    def commit(self, group_id, offsets, now_ms):
        for c in offsets:
            self._offsets.setdefault(group_id, {})[(c.topic, c.partition)] = OffsetAndMetadata(c.offset, "", now_ms)

    def delete_offsets(self, group_id, partitions, now_ms):
        known = self._offsets.get(group_id, {})
        gone = [tp for tp in dict.fromkeys(partitions) if tp in known]
        for tp in gone:
            del known[tp]
        if not known:
            self._offsets.pop(group_id, None)
        return len(gone)

    def flush(self):
        pass


def test_delete_offsets_and_expire():

    store = Offsets()
    store.commit("g", [OffsetCommit("a", 0, 1), OffsetCommit("b", 0, 2)], 0)
    store.commit("g", [OffsetCommit("a", 1, 3)], 5 * DAY)
    # measured from the commit
    assert store.expire("g", 7 * DAY - 1, 7 * DAY) == 0
    assert store.expire("g", 7 * DAY, 7 * DAY, keep_topics=frozenset({"b"})) == 1
    assert set(store.fetch("g")) == {("b", 0), ("a", 1)}
    # measured from when the group became Empty, when that is later
    assert store.expire("g", 12 * DAY, 7 * DAY, since_ms=6 * DAY) == 0
    assert store.expire("g", 13 * DAY, 7 * DAY, since_ms=6 * DAY) == 2
    assert not store.has_offsets("g")
    store.commit("g", [OffsetCommit("a", 0, 1)], 0)
    assert store.delete_offsets("g", [("a", 0), ("a", 0), ("zz", 1)], 1) == 1
    assert store.groups() == [] and store.delete_group("g", 2) == 0
