"""The offset store against real files: commits survive reopening, a torn tail loses only
what was never flushed, tombstones and compaction remove deleted groups, expiry, and the
record bytes Kafka writes to __consumer_offsets."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from dcli.wire.records import Record, build_batch, decode_records, iter_batches
from dcli_server.broker.offsets import (
    DEFAULT_LOG_CONFIG, OffsetAndMetadata, OffsetCommit, OffsetStore, decode_key, decode_value, encode_key,
    encode_value,
)
from dcli_server.storage.log_config import LogConfig
from dcli_server.storage.segments import PartitionLog

DAY = 24 * 60 * 60 * 1000


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "__consumer_offsets-0"


def log_records(store: OffsetStore) -> list[Record]:
    log, out = store.log, []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20)
        if not data:
            break
        for h, b in iter_batches(data):
            out += [r for r in decode_records(b) if r.offset >= offset]
            offset = h.next_offset
    return out


def test_commit_is_visible_and_survives_reopening(directory):
    with OffsetStore(directory) as store:
        store.commit("g", [OffsetCommit("chat", 0, 10, "first"), OffsetCommit("chat", 1, 20)], 1000)
        store.commit("g", [OffsetCommit("chat", 0, 15)], 2000)
        store.commit("other", [OffsetCommit("orders", 3, 7, leader_epoch=2)], 3000)
        assert store.fetch("g")[("chat", 0)] == OffsetAndMetadata(15, "", 2000)
        store.flush()
        expected = {g: store.fetch(g) for g in ("g", "other")}
    with OffsetStore(directory) as again:
        assert {g: again.fetch(g) for g in ("g", "other")} == expected
        assert expected["g"] == {("chat", 0): OffsetAndMetadata(15, "", 2000),
                                 ("chat", 1): OffsetAndMetadata(20, "", 1000)}
        assert again.fetch("other")[("orders", 3)].leader_epoch == 2
        assert sorted(again.groups()) == ["g", "other"]
        assert again.fetch("g", [("chat", 1), ("chat", 9)]) == {("chat", 1): OffsetAndMetadata(20, "", 1000)}


def test_one_commit_is_one_batch(directory):
    with OffsetStore(directory) as store:
        store.commit("g", [OffsetCommit("t", p, p) for p in range(5)], 1)
        store.commit("g", [], 2)  # nothing to write
        assert store.log.log_end_offset == 5
        assert len(list(iter_batches(store.log.read(0, 1 << 20)))) == 1


def test_torn_tail_keeps_every_flushed_commit(directory):
    with OffsetStore(directory) as store:
        for i in range(5):
            store.commit("g", [OffsetCommit("t", 0, i * 10, f"m{i}"), OffsetCommit("t", 1, i)], 1000 + i)
            store.flush()
        flushed = store.fetch("g")
        flushed_size = store.log.size_bytes
        store.commit("g", [OffsetCommit("t", 0, 999), OffsetCommit("t", 1, 999)], 9000)
        assert store.fetch("g")[("t", 0)].offset == 999
        full_size = store.log.size_bytes
    # A crash part way through the last append: only some of its bytes reached the disk.
    segment = directory / "00000000000000000000.log"
    for cut in (flushed_size + 1, (flushed_size + full_size) // 2, full_size - 1):
        with open(segment, "r+b") as f:
            f.truncate(cut)
        with OffsetStore(directory) as again:
            assert again.fetch("g") == flushed
            assert again.log.size_bytes == flushed_size


def test_delete_group_writes_tombstones_and_compaction_drops_them(directory):
    config = LogConfig(cleanup_policy="compact", segment_bytes=200, delete_retention_ms=DAY)
    with OffsetStore(directory, config) as store:
        for i in range(4):
            store.commit("gone", [OffsetCommit("t", 0, i), OffsetCommit("t", 1, i)], 1000 + i)
            store.commit("kept", [OffsetCommit("t", 0, 100 + i)], 1000 + i)
        assert store.delete_group("gone", 5000) == 2
        assert store.delete_group("never-existed", 5000) == 0
        assert not store.has_offsets("gone") and store.fetch("gone") == {}
        store.commit("kept", [OffsetCommit("t", 1, 1)], 6000)  # closes the tombstones' segment
        store.flush()
        tombstones = [r for r in log_records(store) if r.value is None]
        assert sorted(decode_key(r.key) for r in tombstones) == [("gone", "t", 0), ("gone", "t", 1)]

        # Within delete.retention.ms only the superseded records go; the tombstones stay so
        # that a reader catching up still sees the deletion.
        store.compact(now_ms=5000 + DAY - 1)
        assert [decode_key(r.key)[0] for r in log_records(store) if r.value is None] == ["gone", "gone"]
        assert all(r.value is None for r in log_records(store) if decode_key(r.key)[0] == "gone")

        store.compact(now_ms=5000 + DAY + 1)
        remaining = log_records(store)
        assert all(decode_key(r.key)[0] == "kept" for r in remaining)
        assert len(remaining) == 2  # the latest of each key of "kept"
    with OffsetStore(directory, config) as again:
        assert again.groups() == ["kept"]
        assert again.fetch("kept") == {("t", 0): OffsetAndMetadata(103, "", 1003),
                                       ("t", 1): OffsetAndMetadata(1, "", 6000)}


def test_delete_offsets_and_expire(directory):
    with OffsetStore(directory) as store:
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
        store.flush()
    with OffsetStore(directory) as again:
        assert again.groups() == []


def test_record_bytes_are_kafkas():
    key = encode_key("g", "chat", 2)
    assert key == struct.pack(">hh", 1, 1) + b"g" + struct.pack(">h", 4) + b"chat" + struct.pack(">i", 2)
    value = encode_value(OffsetAndMetadata(42, "md", 1700, 5))
    assert value == struct.pack(">hqih", 3, 42, 5, 2) + b"md" + struct.pack(">q", 1700)
    assert decode_key(key) == ("g", "chat", 2)
    assert decode_value(value) == OffsetAndMetadata(42, "md", 1700, 5)


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
    with OffsetStore(directory) as store:
        assert store.fetch("g") == {("t", 0): OffsetAndMetadata(7, "x", 1234),
                                    ("t", 1): OffsetAndMetadata(8, "", 55)}


def test_refuses_a_log_that_is_not_compacted(directory):
    with pytest.raises(ValueError, match="compact"):
        OffsetStore(directory, LogConfig())
    assert not os.path.exists(directory)
