"""The partition log against real files: offsets, reads, rolling, recovery from torn tails and
damage, index rebuilds, retention, compaction, truncation, configuration, threads."""

from __future__ import annotations

import logging
import os
import struct
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcli.wire.errors import (
    CorruptRecordError,
    InvalidConfigurationError,
    InvalidRecordError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
)
from dcli.wire.records import Record, build_batch, decode_records, iter_batches, validate_batch
from dcli_server.broker.producer_state import Duplicate, ProducerStateTable
from dcli_server.storage.segments import CorruptSegmentError, LogConfig, PartitionLog
from dcli_server.storage.wal import CorruptLogError


class Clock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def batch(n: int = 1, *, key: bytes | None = b"k", value: bytes | None = b"v", ts: int = 1000,
          **kwargs) -> bytes:
    return build_batch([Record(key, value, (), ts)] * n, **kwargs)


def records(log: PartitionLog, start: int | None = None) -> list[Record]:
    """Every record from `start` (default: the log start) to the log end."""
    offset = log.log_start_offset if start is None else start
    out: list[Record] = []
    while offset < log.log_end_offset:
        data = log.read(offset, 4096)
        if not data:
            break
        for h, b in iter_batches(data):
            validate_batch(b)
            out += [r for r in decode_records(b) if r.offset >= offset]
            offset = h.next_offset
    return out


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "chat-0"


def open_log(directory: Path, clock: Clock | None = None, **config) -> PartitionLog:
    return PartitionLog(directory, LogConfig(**config), clock=clock or Clock())


def segment_files(directory: Path, suffix: str = ".log") -> list[Path]:
    return sorted(directory.glob(f"*{suffix}"))


# -- offsets and reads ----------------------------------------------------------------------


def test_new_log_has_one_empty_segment(directory):
    with open_log(directory) as log:
        assert (log.log_start_offset, log.log_end_offset, log.size_bytes) == (0, 0, 0)
        assert [p.name for p in segment_files(directory)] == ["00000000000000000000.log"]
        assert (directory / "00000000000000000000.index").exists()
        assert (directory / "00000000000000000000.timeindex").exists()
        assert log.read(0, 100) == b""


def test_offsets_are_contiguous_across_appends_and_restart(directory):
    with open_log(directory) as log:
        assert log.append(batch(3)).base_offset == 0
        info = log.append(batch(2, base_offset=999))  # the producer's base offset is ignored
        assert (info.base_offset, info.last_offset, info.log_append_time) == (3, 4, -1)
        log.flush()
    with open_log(directory) as log:
        assert log.log_end_offset == 5
        assert log.append(batch(1)).base_offset == 5
    with open_log(directory) as log:
        assert [r.offset for r in records(log)] == list(range(6))


def test_stored_bytes_are_the_producers_with_offset_and_epoch_assigned(directory):
    original = batch(2, producer_id=9, producer_epoch=1, base_sequence=0)
    with open_log(directory) as log:
        log.append(batch(1))
        log.append(original, leader_epoch=7)
        stored = log.read(1, 10_000)
    h = validate_batch(stored)
    assert (h.base_offset, h.partition_leader_epoch, h.producer_id) == (1, 7, 9)
    assert stored[16:] == original[16:]


def test_read_from_the_middle_of_a_batch_returns_that_batch(directory):
    with open_log(directory) as log:
        log.append(batch(5))
        log.append(batch(5))
        data = log.read(7, 1_000_000)
        assert [h.base_offset for h, _ in iter_batches(data)] == [5]
        data = log.read(2, 1_000_000)
        assert [h.base_offset for h, _ in iter_batches(data)] == [0, 5]


def test_read_returns_at_least_one_whole_batch_and_respects_max_bytes(directory):
    with open_log(directory) as log:
        for _ in range(10):
            log.append(batch(1, value=b"x" * 100))
        one = len(log.read(0, 1))
        assert one == len(batch(1, value=b"x" * 100))
        assert len(log.read(0, one * 3 + 10)) == one * 3
        assert len(log.read(0, 10**9)) == one * 10


def test_read_never_returns_records_at_or_above_max_offset(directory):
    with open_log(directory) as log:
        for _ in range(4):
            log.append(batch(2))
        data = log.read(0, 10**6, max_offset=5)  # the batch [4, 5] straddles the watermark
        assert [h.last_offset for h, _ in iter_batches(data)] == [1, 3]
        assert log.read(4, 10**6, max_offset=5) == b""
        assert log.read(5, 10**6, max_offset=5) == b""
        assert log.read(6, 10**6, max_offset=8) != b""


def test_out_of_range_reads_raise_kafkas_error(directory):
    with open_log(directory) as log:
        log.append(batch(3))
        assert log.read(3, 100) == b""  # the log end: nothing yet, not an error
        with pytest.raises(OffsetOutOfRangeError) as info:
            log.read(4, 100)
        assert str(info.value) == ("Received request for offset 4 for partition chat-0, but we "
                                   "only have log segments upto 3.")
        with pytest.raises(OffsetOutOfRangeError):
            log.read(-1, 100)


def test_reads_use_the_sparse_index(directory):
    with open_log(directory, index_interval_bytes=64) as log:
        for i in range(200):
            log.append(batch(1, value=b"%d" % i))
        index = (directory / "00000000000000000000.index").read_bytes()
        entries = [struct.unpack_from(">ii", index, i) for i in range(0, len(index), 8)]
        assert len(entries) > 50
        # Each entry is (relative last offset, position) of a batch that starts there.
        for relative, position in entries[:10]:
            assert validate_batch(log.read(relative, 1)).base_offset == relative
            data = (directory / "00000000000000000000.log").read_bytes()
            assert struct.unpack_from(">q", data, position)[0] == relative
        assert [r.value for r in records(log, 150)][:2] == [b"150", b"151"]


# -- what append refuses --------------------------------------------------------------------


def test_batch_over_max_message_bytes_is_refused_with_kafkas_words(directory):
    big = batch(1, value=b"x" * 200)
    with open_log(directory, max_message_bytes=len(big) - 1) as log:
        with pytest.raises(RecordTooLargeError) as info:
            log.append(big)
        assert str(info.value) == (
            f"The record batch size in the append to chat-0 is {len(big)} bytes which exceeds "
            f"the maximum configured value of {len(big) - 1}.")
        assert log.log_end_offset == 0


def test_corrupt_batch_is_refused_and_nothing_is_written(directory):
    damaged = bytearray(batch(2))
    damaged[-1] ^= 0xFF
    with open_log(directory) as log:
        with pytest.raises(CorruptRecordError, match="stored crc"):
            log.append(bytes(damaged))
        assert (log.log_end_offset, log.size_bytes) == (0, 0)


def test_inconsistent_record_count_is_refused(directory):
    gapped = build_batch([Record(b"a", b"1", (), 1, 0), Record(b"b", b"2", (), 1, 2)])
    with open_log(directory) as log:
        with pytest.raises(InvalidRecordError, match="Inconsistent batch offset range"):
            log.append(gapped)


def test_compacted_topic_refuses_records_without_key(directory):
    with open_log(directory, cleanup_policy="compact") as log:
        with pytest.raises(InvalidRecordError) as info:
            log.append(build_batch([Record(b"k", b"v", (), 1), Record(None, b"v", (), 1)]))
        assert str(info.value) == ("Compacted topic cannot accept message without key in topic "
                                   "partition chat-0.")
        log.append(batch(1, value=None))  # a tombstone has a key


# -- rolling --------------------------------------------------------------------------------


def test_roll_by_size(directory):
    one = len(batch(1, value=b"x" * 50))
    with open_log(directory, segment_bytes=one * 3) as log:
        for _ in range(10):
            log.append(batch(1, value=b"x" * 50))
        assert [s.base_offset for s in log.segments] == [0, 3, 6, 9]
        assert all(s.size_bytes <= one * 3 for s in log.segments)
        assert [p.name for p in segment_files(directory)][1] == "00000000000000000003.log"
    with open_log(directory, segment_bytes=one * 3) as log:
        assert [r.offset for r in records(log)] == list(range(10))


def test_roll_by_time_with_an_injected_clock(directory):
    clock = Clock(1_000_000)
    with open_log(directory, clock, segment_ms=1000) as log:
        log.append(batch(1))
        clock.now += 1000
        log.append(batch(1))  # exactly segment.ms: not yet
        clock.now += 1
        log.append(batch(1))
        assert [s.base_offset for s in log.segments] == [0, 2]
        clock.now += 10_000
        log.append(batch(1))
        assert [s.base_offset for s in log.segments] == [0, 2, 3]


def test_an_empty_active_segment_never_rolls(directory):
    clock = Clock()
    with open_log(directory, clock, segment_ms=1) as log:
        clock.now += 100
        log.append(batch(1))
        assert [s.base_offset for s in log.segments] == [0]


# -- recovery -------------------------------------------------------------------------------


def test_torn_tail_at_every_byte_recovers_to_the_last_whole_batch(directory, caplog):
    with open_log(directory) as log:
        for i in range(3):
            log.append(batch(2, value=b"v%d" % i))
        log.append(batch(3, value=b"last"))
    path = segment_files(directory)[0]
    whole = path.read_bytes()
    last_size = len(batch(3, value=b"last"))
    for cut in range(len(whole) - last_size, len(whole)):
        path.write_bytes(whole[:cut])
        with caplog.at_level(logging.WARNING), open_log(directory) as log:
            assert log.log_end_offset == 6
            assert [r.value for r in records(log)] == [b"v0", b"v0", b"v1", b"v1", b"v2", b"v2"]
        if cut > len(whole) - last_size:
            assert "torn tail" in caplog.text
        assert path.stat().st_size == len(whole) - last_size
        caplog.clear()
    with open_log(directory) as log:
        assert log.append(batch(1)).base_offset == 6


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=8), data=st.data())
def test_random_torn_tails(tmp_path_factory, sizes, data):
    directory = tmp_path_factory.mktemp("torn") / "t-0"
    ends = []
    with open_log(directory) as log:
        for n in sizes:
            log.append(batch(n, value=b"x" * n))
            ends.append((log.size_bytes, log.log_end_offset))
    path = segment_files(directory)[0]
    whole = path.read_bytes()
    cut = data.draw(st.integers(0, len(whole)))
    tail = data.draw(st.sampled_from([b"", b"\x00" * 100, b"\xff" * 7]))
    damaged = whole[:cut] + tail
    path.write_bytes(damaged)
    # a batch survives when its bytes are all there: the tail may happen to restore what the
    # cut took (a batch that ends in a zero byte, cut by one, then a zeroed tail)
    survivors = [(size, end) for size, end in ends if damaged[:size] == whole[:size]]
    with open_log(directory) as log:
        size, end = survivors[-1] if survivors else (0, 0)
        assert (log.size_bytes, log.log_end_offset) == (size, end)
        assert len(records(log)) == end


def test_a_tail_that_restores_the_cut_byte_leaves_the_batch_whole(directory):
    # found by test_random_torn_tails: a batch ends in a zero byte (its last record's header
    # count), so cutting that byte and appending zeros gives the whole batch back
    with open_log(directory) as log:
        log.append(batch(3, value=b"xxx"))
        whole_log = (log.size_bytes, log.log_end_offset)
    path = segment_files(directory)[0]
    whole = path.read_bytes()
    assert whole[-1] == 0
    path.write_bytes(whole[:-1] + b"\x00" * 100)
    with open_log(directory) as log:
        assert (log.size_bytes, log.log_end_offset) == whole_log
        assert len(records(log)) == 3
    assert path.read_bytes() == whole


def test_zeroed_tail_is_cut(directory):
    with open_log(directory) as log:
        log.append(batch(2))
    path = segment_files(directory)[0]
    with open(path, "ab") as f:
        f.write(b"\x00" * 4096)  # what a file extended but never written looks like
    with open_log(directory) as log:
        assert log.log_end_offset == 2 and log.size_bytes == len(batch(2))


def test_damage_inside_a_closed_segment_refuses_to_open(directory):
    one = len(batch(1))
    with open_log(directory, segment_bytes=one * 3) as log:
        for _ in range(7):
            log.append(batch(1))
    first = segment_files(directory)[0]
    data = bytearray(first.read_bytes())
    data[one + 30] ^= 0x01  # in the second batch's CRC-covered part
    first.write_bytes(bytes(data))
    with pytest.raises(CorruptSegmentError) as info:
        open_log(directory, segment_bytes=one * 3)
    assert isinstance(info.value, CorruptLogError)
    assert info.value.path == first and info.value.offset == one
    assert str(first) in str(info.value) and "refusing to open" in str(info.value)


def test_damage_in_the_middle_of_the_active_segment_refuses_to_open_instead_of_cutting(directory):
    """A bad batch with a good one after it is not a torn tail: cutting there would drop the
    (acknowledged) batches after it. Damage to the last batch is still cut as a torn tail."""
    one = len(batch(1))
    with open_log(directory) as log:
        for _ in range(4):
            log.append(batch(1))
    path = segment_files(directory)[0]
    whole = path.read_bytes()
    data = bytearray(whole)
    data[one + 30] ^= 0x01          # the second of four batches
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptSegmentError) as info:
        open_log(directory)
    assert info.value.offset == one and "refusing to open" in str(info.value)
    assert path.read_bytes() == bytes(data)            # nothing was cut
    data = bytearray(whole)
    data[3 * one + 30] ^= 0x01      # the last batch: a torn tail
    path.write_bytes(bytes(data))
    with open_log(directory) as log:
        assert log.log_end_offset == 3


def test_a_closed_segment_cut_short_refuses_to_open(directory):
    one = len(batch(1))
    with open_log(directory, segment_bytes=one * 2) as log:
        for _ in range(5):
            log.append(batch(1))
    first = segment_files(directory)[0]
    first.write_bytes(first.read_bytes()[:-1])
    with pytest.raises(CorruptSegmentError, match="short batch"):
        open_log(directory, segment_bytes=one * 2)


def test_offsets_that_overlap_the_next_segment_refuse_to_open(directory):
    one = len(batch(1))
    with open_log(directory, segment_bytes=one * 2) as log:
        for _ in range(5):
            log.append(batch(1))
    second = segment_files(directory)[1]
    second.rename(directory / "00000000000000000001.log")  # the base offset field is not CRC'd
    with pytest.raises(CorruptSegmentError, match="next segment's base offset 1"):
        open_log(directory, segment_bytes=one * 2)


@pytest.mark.parametrize("damage", ["delete", "garble", "truncate", "extend"])
def test_damaged_indexes_are_rebuilt(directory, damage):
    with open_log(directory, index_interval_bytes=32, segment_bytes=2000) as log:
        for i in range(60):
            log.append(batch(1, value=b"%d" % i, ts=1000 + i))
    index_files = segment_files(directory, ".index") + segment_files(directory, ".timeindex")
    good = {p: p.read_bytes() for p in index_files}
    assert all(good[p] for p in index_files)
    for path in index_files:
        if damage == "delete":
            path.unlink()
        elif damage == "garble":
            path.write_bytes(bytes(b ^ 0x5A for b in good[path]))
        elif damage == "truncate":
            path.write_bytes(good[path][:-3])
        else:
            path.write_bytes(good[path] + b"\x00" * 8)
    with open_log(directory, index_interval_bytes=32, segment_bytes=2000) as log:
        assert {p: p.read_bytes() for p in index_files} == good
        assert [r.value for r in records(log, 45)][:1] == [b"45"]


def test_clean_reopen_rewrites_nothing(directory, caplog):
    with open_log(directory, index_interval_bytes=32, segment_bytes=600) as log:
        for i in range(40):
            log.append(batch(1, ts=1000 + i))
    with caplog.at_level(logging.WARNING), open_log(directory, index_interval_bytes=32,
                                                    segment_bytes=600):
        pass
    assert caplog.text == ""


def test_leftovers_of_an_interrupted_compaction_are_removed(directory):
    with open_log(directory) as log:
        log.append(batch(1))
    (directory / "00000000000000000000.log.cleaned").write_bytes(b"partial")
    (directory / "00000000000000000077.index").write_bytes(b"")
    with open_log(directory) as log:
        assert log.log_end_offset == 1
    assert sorted(p.name for p in directory.iterdir()) == [
        "00000000000000000000.index", "00000000000000000000.log", "00000000000000000000.timeindex"]


# -- retention ------------------------------------------------------------------------------


def test_retention_by_bytes_deletes_only_closed_segments(directory):
    one = len(batch(1))
    with open_log(directory, segment_bytes=one * 2, retention_bytes=one * 3) as log:
        for _ in range(9):
            log.append(batch(1))
        assert [s.base_offset for s in log.segments] == [0, 2, 4, 6, 8]
        assert log.delete_old_segments() == 3
        assert [s.base_offset for s in log.segments] == [6, 8]
        assert log.log_start_offset == 6 and log.size_bytes == one * 3
        with pytest.raises(OffsetOutOfRangeError) as info:
            log.read(5, 100)
        assert str(info.value).endswith("but we only have log segments starting from offset: 6.")
        assert [r.offset for r in records(log)] == [6, 7, 8]
    assert [p.name for p in segment_files(directory)] == [
        "00000000000000000006.log", "00000000000000000008.log"]
    with open_log(directory, segment_bytes=one * 2) as log:
        assert (log.log_start_offset, log.log_end_offset) == (6, 9)


def test_retention_by_time_uses_the_newest_record_and_spares_the_active_segment(directory):
    clock = Clock(100_000)
    one = len(batch(1))
    with open_log(directory, clock, segment_bytes=one * 2, retention_ms=1000) as log:
        for ts in (10_000, 10_000, 50_000, 99_500, 10_000, 10_000):
            log.append(batch(1, ts=ts))
        # segments: [0,1] newest 10_000; [2,3] newest 99_500; [4,5] active, old records
        assert log.delete_old_segments() == 1
        assert log.log_start_offset == 2
        assert log.delete_old_segments(now_ms=100_500) == 0  # 99_500 is exactly 1000 old
        assert log.delete_old_segments(now_ms=100_501) == 1
        assert log.delete_old_segments(now_ms=10**9) == 0  # the active segment stays
        assert [s.base_offset for s in log.segments] == [4]


def test_retention_stops_at_the_high_watermark_and_respects_policy(directory):
    one = len(batch(1))
    with open_log(directory, segment_bytes=one, retention_bytes=0) as log:
        for _ in range(4):
            log.append(batch(1))
        assert log.delete_old_segments(max_offset=2) == 2
        assert log.log_start_offset == 2
    with open_log(directory, segment_bytes=one, retention_bytes=0, cleanup_policy="compact") as log:
        assert log.delete_old_segments() == 0
    with open_log(directory, segment_bytes=one, retention_ms=-1) as log:
        assert log.delete_old_segments(now_ms=10**12) == 0


# -- compaction -----------------------------------------------------------------------------


def test_compaction_keeps_the_latest_record_per_key_at_its_original_offset(directory):
    clock = Clock(1_000_000)
    writes = [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"c", b"1"), (b"b", None),
              (b"a", b"3"), (b"d", b"1"), (b"c", b"2")]
    with open_log(directory, clock, cleanup_policy="compact", segment_bytes=200,
                  delete_retention_ms=1000) as log:
        for i, (key, value) in enumerate(writes):
            log.append(batch(1, key=key, value=value, ts=1_000_000 + i))
        log.append(batch(1, key=b"z", value=b"active"))  # the active segment is never cleaned
        closed_end = log.segments[-1].base_offset
        assert closed_end >= 4
        removed = log.compact()
        survivors = [(r.offset, r.key, r.value) for r in records(log)]
        latest = {}
        for offset, (key, value) in enumerate(writes[:closed_end]):
            latest[key] = (offset, value)
        expected = sorted((o, k, v) for k, (o, v) in latest.items())
        expected += [(o, k, v) for o, (k, v) in enumerate(writes) if o >= closed_end]
        expected.append((len(writes), b"z", b"active"))
        assert survivors == expected
        assert removed == closed_end - len(latest)
        assert log.log_end_offset == len(writes) + 1 and log.log_start_offset == 0
    with open_log(directory, cleanup_policy="compact", segment_bytes=200) as log:
        assert [(r.offset, r.key, r.value) for r in records(log)] == expected


def test_compaction_drops_tombstones_only_after_delete_retention(directory):
    with open_log(directory, cleanup_policy="compact", segment_bytes=100,
                  delete_retention_ms=1000) as log:
        log.append(batch(1, key=b"a", value=b"1", ts=5000))
        log.append(batch(1, key=b"a", value=None, ts=6000))
        log.append(batch(1, key=b"b", value=b"1", ts=6000))
        assert len(log.segments) == 3
        log.compact(now_ms=7000)  # the tombstone is exactly 1000 old: kept
        assert [(r.offset, r.value) for r in records(log)] == [(1, None), (2, b"1")]
        log.compact(now_ms=7001)
        assert [(r.offset, r.value) for r in records(log)] == [(2, b"1")]
        # The emptied second segment goes; the first stays to keep the log start offset.
        assert [(s.base_offset, s.size_bytes) for s in log.segments] == [(0, 0), (2, len(batch(1)))]
        assert log.log_start_offset == 0
        assert log.read(0, 1000)[:8] == struct.pack(">q", 2)  # reads skip the gap


def test_compaction_rebuilds_a_batch_with_gaps_and_its_original_last_offset(directory):
    mixed = build_batch([Record(b"a", b"old", (), 1), Record(b"b", b"keep", (), 1),
                         Record(b"a", b"mid", (), 1)])
    with open_log(directory, cleanup_policy="compact", segment_bytes=len(mixed)) as log:
        log.append(mixed)
        log.append(batch(1, key=b"a", value=b"new"))
        log.append(batch(1, key=b"c", value=b"active"))
        log.compact()
        h = validate_batch(log.read(0, 1))
        assert (h.base_offset, h.last_offset, h.records_count) == (0, 2, 1)
        assert [(r.offset, r.value) for r in records(log)] == [(1, b"keep"), (3, b"new"),
                                                               (4, b"active")]


def test_compaction_does_nothing_under_the_delete_policy(directory):
    with open_log(directory, segment_bytes=100) as log:
        for _ in range(3):
            log.append(batch(1))
        assert log.compact() == 0 and len(records(log)) == 3


# -- truncation -----------------------------------------------------------------------------


def test_truncate_to_drops_everything_from_the_offset(directory):
    one = len(batch(2))
    with open_log(directory, segment_bytes=one * 2) as log:
        for i in range(6):
            log.append(batch(2, value=b"%d" % i))
        log.truncate_to(5)  # inside the batch [4, 5]: that batch goes whole
        assert log.log_end_offset == 4
        assert [s.base_offset for s in log.segments] == [0, 4]
        assert log.append(batch(1, value=b"new")).base_offset == 4
        log.truncate_to(4)
        log.truncate_to(100)  # past the end: nothing
        assert log.log_end_offset == 4
    with open_log(directory, segment_bytes=one * 2) as log:
        assert log.log_end_offset == 4
        assert [r.value for r in records(log)] == [b"0", b"0", b"1", b"1"]
        log.truncate_to(0)
        assert (log.log_start_offset, log.log_end_offset, log.size_bytes) == (0, 0, 0)


def test_truncate_below_the_log_start_starts_over(directory):
    one = len(batch(1))
    with open_log(directory, segment_bytes=one, retention_bytes=0) as log:
        for _ in range(4):
            log.append(batch(1))
        log.delete_old_segments()
        assert log.log_start_offset == 3
        log.truncate_to(1)
        assert (log.log_start_offset, log.log_end_offset) == (1, 1)
        assert log.append(batch(1)).base_offset == 1
    assert [p.name for p in segment_files(directory)] == ["00000000000000000001.log"]


# -- producer state from the log ------------------------------------------------------------


def test_producer_state_rebuilt_from_batch_headers(directory):
    with open_log(directory, segment_bytes=300) as log:
        for seq in range(0, 12, 3):
            log.append(batch(3, producer_id=5, producer_epoch=0, base_sequence=seq))
        log.append(batch(1))
    with open_log(directory, segment_bytes=300) as log:
        headers = log.batch_headers()
        assert [h.base_offset for h in headers] == [0, 3, 6, 9, 12]
        assert [h.base_offset for h in log.batch_headers(7)] == [6, 9, 12]
    table = ProducerStateTable("chat-0")
    table.rebuild_from(headers)
    assert table.check(5, 0, 9, 11) == Duplicate(9, 11)
    assert table.check(5, 0, 12, 12) is None


# -- configuration --------------------------------------------------------------------------


def test_config_from_kafka_property_names():
    config = LogConfig.from_properties({
        "segment.bytes": "1048576", "retention.ms": -1, "cleanup.policy": "delete, compact",
        "max.message.bytes": " 2000 ", "index.interval.bytes": 0,
    })
    assert (config.segment_bytes, config.retention_ms, config.max_message_bytes) == (1048576, -1, 2000)
    assert config.compacts and config.deletes
    assert LogConfig().max_message_bytes == 1048588 and LogConfig().segment_bytes == 1 << 30


@pytest.mark.parametrize("props,message", [
    ({"segment.bytes": "abc"}, "Invalid value abc for configuration segment.bytes: Not a number of type INT"),
    ({"segment.bytes": 2**31}, f"Invalid value {2**31} for configuration segment.bytes: Not a number of type INT"),
    ({"segment.bytes": 10}, "Invalid value 10 for configuration segment.bytes: Value must be at least 14"),
    ({"retention.ms": -2}, "Invalid value -2 for configuration retention.ms: Value must be at least -1"),
    ({"segment.ms": 1.5}, "Invalid value 1.5 for configuration segment.ms: Not a number of type LONG"),
    ({"cleanup.policy": "forever"}, "Invalid value forever for configuration cleanup.policy: "
                                    "String must be one of: compact, delete"),
    ({"retention.hours": 1}, "Unknown topic config name: retention.hours"),
])
def test_bad_config_values_are_refused_with_kafkas_words(props, message):
    with pytest.raises(InvalidConfigurationError) as info:
        LogConfig.from_properties(props)
    assert str(info.value) == message


def test_direct_construction_is_checked_too():
    with pytest.raises(InvalidConfigurationError):
        LogConfig(index_interval_bytes=-1)


# -- threads and closing --------------------------------------------------------------------


def test_flush_from_another_thread_while_appending(directory):
    one = len(batch(1))
    log = open_log(directory, segment_bytes=one * 50)
    stop = threading.Event()
    errors: list[BaseException] = []

    def flusher() -> None:
        try:
            while not stop.is_set():
                log.flush()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=flusher) for _ in range(2)]
    for t in threads:
        t.start()
    offsets: list[int] = []

    def appender() -> None:
        for _ in range(300):
            offsets.append(log.append(batch(1)).base_offset)

    appenders = [threading.Thread(target=appender) for _ in range(3)]
    for t in appenders:
        t.start()
    for t in appenders:
        t.join()
    stop.set()
    for t in threads:
        t.join()
    log.flush()
    log.close()
    assert errors == []
    assert sorted(offsets) == list(range(900))
    with open_log(directory, segment_bytes=one * 50) as log:
        assert [r.offset for r in records(log)] == list(range(900))


def test_flush_is_a_no_op_when_nothing_is_new(directory, monkeypatch):
    calls = []
    import dcli_server.storage.segments as segments

    monkeypatch.setattr(segments, "_datasync", lambda fd: calls.append(fd))
    with open_log(directory) as log:
        log.flush()
        assert calls == []
        log.append(batch(1))
        log.flush()
        log.flush()
        assert len(calls) == 1


def test_closed_log_refuses_use(directory):
    log = open_log(directory)
    log.close()
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log.append(batch(1))
    with pytest.raises(ValueError, match="closed"):
        log.read(0, 10)


def test_no_descriptor_leaks_when_open_fails(directory):
    one = len(batch(1))
    with open_log(directory, segment_bytes=one) as log:
        for _ in range(3):
            log.append(batch(1))
    first = segment_files(directory)[0]
    first.write_bytes(b"\x01" * one)
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with pytest.raises(CorruptSegmentError):
        open_log(directory, segment_bytes=one)
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before
