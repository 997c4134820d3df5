"""The write-ahead log against real files: round trips, torn tails, damage, purging, threads,
and a real SIGKILL."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dcli_server.storage.wal import (
    HEADER_BYTES,
    CorruptLogError,
    FsyncMode,
    WriteAheadLog,
    encode_record,
)


def payload_for(zxid: int) -> bytes:
    # Varied sizes, including empty payloads, and content that differs per record.
    return f"record-{zxid}-".encode() * (zxid % 5)


def write(directory: Path, zxids, **kwargs) -> None:
    wal = WriteAheadLog(directory, **kwargs)
    assert list(wal.replay()) == []
    for zxid in zxids:
        wal.append(zxid, payload_for(zxid))
    wal.sync()
    wal.close()


def replay_all(directory: Path, after_zxid: int = 0) -> list[tuple[int, bytes]]:
    wal = WriteAheadLog(directory)
    try:
        return list(wal.replay(after_zxid))
    finally:
        wal.close()


def expected(zxids) -> list[tuple[int, bytes]]:
    return [(z, payload_for(z)) for z in zxids]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("log.*"))


def record_offsets(path: Path) -> list[int]:
    """Start offset of every record in a segment written by `write`, plus the file end."""
    data = path.read_bytes()
    offsets, pos = [0], 0
    while pos < len(data):
        pos += HEADER_BYTES + int.from_bytes(data[pos + 8 : pos + 12], "big")
        offsets.append(pos)
    assert pos == len(data)
    return offsets


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


# -- round trips ------------------------------------------------------------------------------


def test_round_trip_across_segments(tmp_path):
    zxids = range(1, 201)
    write(tmp_path, zxids, segment_bytes=300)
    files = segments(tmp_path)
    assert len(files) > 5
    # Each segment is named after its first record, 20 digits.
    assert [p.name for p in files][0] == "log." + "1".zfill(20)
    for path in files:
        assert len(path.name) == len("log.") + 20
    assert replay_all(tmp_path) == expected(zxids)


def test_segment_names_match_their_first_record(tmp_path):
    zxids = list(range(10, 400, 7))
    write(tmp_path, zxids, segment_bytes=250)
    for path in segments(tmp_path):
        first = int.from_bytes(path.read_bytes()[12:20], "big")
        assert path.name == f"log.{first:020d}"


def test_replay_after_zxid(tmp_path):
    write(tmp_path, range(1, 101), segment_bytes=300)
    assert replay_all(tmp_path, after_zxid=63) == expected(range(64, 101))
    assert replay_all(tmp_path, after_zxid=100) == []


def test_empty_and_missing_directory(tmp_path):
    missing = tmp_path / "not-there"
    wal = WriteAheadLog(missing)
    assert list(wal.replay()) == []
    assert wal.last_zxid == 0
    assert list(WriteAheadLog(tmp_path).replay()) == []


def test_reopen_and_continue(tmp_path):
    write(tmp_path, range(1, 11), segment_bytes=300)
    wal = WriteAheadLog(tmp_path, segment_bytes=300)
    assert [z for z, _ in wal.replay()] == list(range(1, 11))
    assert wal.last_zxid == 10
    for zxid in range(11, 31):
        wal.append(zxid, payload_for(zxid))
    assert wal.last_zxid == 30
    wal.close()
    assert replay_all(tmp_path) == expected(range(1, 31))


@pytest.mark.parametrize("mode", list(FsyncMode))
def test_every_fsync_mode_round_trips(tmp_path, mode):
    write(tmp_path, range(1, 51), fsync=mode, segment_bytes=200, batch_interval_s=3600)
    assert replay_all(tmp_path) == expected(range(1, 51))


def test_append_without_replay_recovers_first(tmp_path):
    write(tmp_path, range(1, 6))
    wal = WriteAheadLog(tmp_path)
    with pytest.raises(ValueError):
        wal.append(5, b"again")  # the log knows zxid 5 is already there
    wal.append(6, payload_for(6))
    wal.close()
    assert replay_all(tmp_path) == expected(range(1, 7))


def test_non_increasing_zxid_is_refused(tmp_path):
    wal = WriteAheadLog(tmp_path)
    wal.append(5, b"a")
    for bad in (5, 4, 0):
        with pytest.raises(ValueError, match="does not follow"):
            wal.append(bad, b"b")
    wal.append(6, b"c")
    wal.close()
    assert replay_all(tmp_path) == [(5, b"a"), (6, b"c")]


def test_append_many_writes_what_appends_one_by_one_write(tmp_path):
    # gaps between zxids, and records crossing several segment rolls in one call
    zxids = [1, 2, 3, 7, 8, 20, *range(21, 60)]
    write(tmp_path / "one", zxids, segment_bytes=300)
    wal = WriteAheadLog(tmp_path / "many", segment_bytes=300)
    assert list(wal.replay()) == []
    wal.append_many([(z, payload_for(z)) for z in zxids[:4]])
    wal.append_many([])
    wal.append_many([(z, payload_for(z)) for z in zxids[4:]])
    assert wal.last_zxid == zxids[-1]
    wal.sync()
    wal.close()
    one, many = segments(tmp_path / "one"), segments(tmp_path / "many")
    assert len(many) > 2
    assert [p.name for p in many] == [p.name for p in one]
    assert [p.read_bytes() for p in many] == [p.read_bytes() for p in one]
    assert replay_all(tmp_path / "many") == expected(zxids)


def test_append_many_writes_nothing_when_a_record_is_invalid(tmp_path):
    wal = WriteAheadLog(tmp_path)
    wal.append(5, b"a")
    with pytest.raises(ValueError, match="does not follow"):
        wal.append_many([(6, b"b"), (7, b"c"), (7, b"d")])
    wal.append_many([(6, b"e")])
    wal.close()
    assert replay_all(tmp_path) == [(5, b"a"), (6, b"e")]


def test_append_after_close_is_refused(tmp_path):
    wal = WriteAheadLog(tmp_path)
    wal.append(1, b"a")
    wal.close()
    with pytest.raises(ValueError, match="closed"):
        wal.append(2, b"b")


# -- torn tails -------------------------------------------------------------------------------


@pytest.mark.parametrize("segment_bytes", [1 << 20, 150], ids=["one-segment", "many-segments"])
def test_torn_tail_at_every_offset_is_cut(tmp_path, segment_bytes):
    zxids = list(range(1, 9))
    original = tmp_path / "original"
    write(original, zxids, segment_bytes=segment_bytes)
    last = segments(original)[-1]
    offsets = record_offsets(last)
    start, end = offsets[-2], offsets[-1]
    assert end - start > HEADER_BYTES  # the last record has a payload to tear
    for cut in range(start, end):
        work = tmp_path / f"cut-{cut}"
        shutil.copytree(original, work)
        os.truncate(work / last.name, cut)

        wal = WriteAheadLog(work, segment_bytes=segment_bytes)
        assert list(wal.replay()) == expected(zxids[:-1]), f"cut at {cut}"
        assert wal.last_zxid == zxids[-2]
        if start > 0:
            assert (work / last.name).stat().st_size == start
        else:
            assert not (work / last.name).exists()  # nothing left in it
        # The log continues cleanly after the cut, even reusing the lost zxid.
        wal.append(zxids[-1], b"rewritten")
        wal.append(100, b"more")
        wal.close()
        assert replay_all(work) == expected(zxids[:-1]) + [(zxids[-1], b"rewritten"), (100, b"more")]
        shutil.rmtree(work)


def test_flipped_byte_in_last_record_is_a_torn_tail(tmp_path):
    original = tmp_path / "original"
    write(original, range(1, 5))
    (path,) = segments(original)
    offsets = record_offsets(path)
    start, end = offsets[-2], offsets[-1]
    assert end - start > HEADER_BYTES
    for offset in range(start, end):
        work = tmp_path / f"flip-{offset}"
        shutil.copytree(original, work)
        flip_byte(work / path.name, offset)
        assert replay_all(work) == expected(range(1, 4)), f"flip at {offset}"
        assert (work / path.name).stat().st_size == start
        shutil.rmtree(work)


def test_zero_filled_tail_is_cut(tmp_path):
    # Some filesystems extend a file with zeros when a crash loses the data but not the size.
    write(tmp_path, range(1, 6))
    (path,) = segments(tmp_path)
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\0" * 4096)
    assert replay_all(tmp_path) == expected(range(1, 6))
    assert path.stat().st_size == size


def test_torn_tail_before_an_empty_later_segment(tmp_path):
    # A crash right after rolling: the new segment exists but got no data, and the old one's
    # tail (never fsync'd) was torn. Both are crash leftovers, not damage.
    write(tmp_path, range(1, 6))
    (path,) = segments(tmp_path)
    offsets = record_offsets(path)
    os.truncate(path, offsets[-2] + 5)
    (tmp_path / f"log.{6:020d}").write_bytes(b"")
    wal = WriteAheadLog(tmp_path)
    assert list(wal.replay()) == expected(range(1, 5))
    assert segments(tmp_path) == [path]
    wal.append(5, b"again")
    wal.close()
    assert replay_all(tmp_path)[-1] == (5, b"again")


# -- damage -----------------------------------------------------------------------------------


def test_flipped_byte_in_a_middle_record_is_corruption(tmp_path):
    original = tmp_path / "original"
    write(original, range(1, 6))
    (path,) = segments(original)
    offsets = record_offsets(path)
    start, end = offsets[2], offsets[3]  # the third of five records
    for offset in range(start, end):
        work = tmp_path / f"flip-{offset}"
        shutil.copytree(original, work)
        flip_byte(work / path.name, offset)
        with pytest.raises(CorruptLogError) as info:
            replay_all(work)
        assert info.value.offset == start, f"flip at {offset}"
        assert (work / path.name).read_bytes() != path.read_bytes()  # nothing truncated
        assert (work / path.name).stat().st_size == path.stat().st_size
        shutil.rmtree(work)


def test_damage_followed_by_a_later_segment_is_corruption(tmp_path):
    write(tmp_path, range(1, 21), segment_bytes=150)
    files = segments(tmp_path)
    assert len(files) >= 3
    victim = files[1]
    offsets = record_offsets(victim)
    flip_byte(victim, offsets[-2] + HEADER_BYTES - 1)  # the last record of a middle segment
    size = victim.stat().st_size
    with pytest.raises(CorruptLogError) as info:
        replay_all(tmp_path)
    assert info.value.path == victim
    assert info.value.offset == offsets[-2]
    assert files[2].name in str(info.value)
    assert victim.stat().st_size == size
    assert segments(tmp_path) == files


def test_corrupt_log_error_is_one_line_for_an_operator(tmp_path):
    write(tmp_path, range(1, 4))
    (path,) = segments(tmp_path)
    offsets = record_offsets(path)
    flip_byte(path, offsets[1] + HEADER_BYTES)
    with pytest.raises(CorruptLogError) as info:
        replay_all(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"byte offset {offsets[1]}" in message
    assert "CRC mismatch" in message
    assert "refuses to start" in message


def test_zxids_not_increasing_on_disk_is_corruption(tmp_path):
    path = tmp_path / f"log.{1:020d}"
    path.write_bytes(encode_record(1, b"a") + encode_record(3, b"b") + encode_record(3, b"c"))
    with pytest.raises(CorruptLogError, match="zxid 3 does not follow the previous zxid 3"):
        replay_all(tmp_path)


def test_zxids_not_increasing_across_segments_is_corruption(tmp_path):
    (tmp_path / f"log.{1:020d}").write_bytes(encode_record(1, b"a") + encode_record(5, b"b"))
    (tmp_path / f"log.{4:020d}").write_bytes(encode_record(4, b"c"))
    with pytest.raises(CorruptLogError, match="does not follow"):
        replay_all(tmp_path)


def test_segment_whose_first_record_disagrees_with_its_name_is_corruption(tmp_path):
    (tmp_path / f"log.{1:020d}").write_bytes(encode_record(1, b"a"))
    (tmp_path / f"log.{2:020d}").write_bytes(encode_record(3, b"c"))
    with pytest.raises(CorruptLogError, match="file name says 2"):
        replay_all(tmp_path)


def test_empty_segment_between_others_is_corruption(tmp_path):
    (tmp_path / f"log.{1:020d}").write_bytes(encode_record(1, b"a"))
    (tmp_path / f"log.{2:020d}").write_bytes(b"")
    (tmp_path / f"log.{3:020d}").write_bytes(encode_record(3, b"c"))
    with pytest.raises(CorruptLogError, match="no records but later segments do"):
        replay_all(tmp_path)


# -- purging ----------------------------------------------------------------------------------


def test_purge_before_deletes_only_whole_covered_segments(tmp_path):
    write(tmp_path, range(1, 101), segment_bytes=300)
    before = segments(tmp_path)
    firsts = [int(p.name[4:]) for p in before]
    assert len(firsts) > 4
    boundary = firsts[3]  # segment 2 ends with zxid boundary - 1
    wal = WriteAheadLog(tmp_path, segment_bytes=300)
    list(wal.replay())
    # One below the boundary: segment 2 still holds a record above it, so it stays.
    wal.purge_before(boundary - 2)
    assert segments(tmp_path) == before[2:]
    # At the boundary every record of segment 2 is covered.
    wal.purge_before(boundary - 1)
    assert segments(tmp_path) == before[3:]
    assert [z for z, _ in replay_all(tmp_path)] == list(range(boundary, 101))
    # Never the active segment, even when everything is covered.
    wal.purge_before(10**6)
    assert segments(tmp_path) == [before[-1]]
    wal.append(101, b"still writable")
    wal.close()
    assert replay_all(tmp_path)[-1] == (101, b"still writable")


# -- concurrency ------------------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_append_concurrent_with_sync(tmp_path):
    has_proc = os.path.isdir("/proc/self/fd")
    fds_before = _open_fds() if has_proc else 0
    wal = WriteAheadLog(tmp_path, fsync=FsyncMode.ALWAYS, segment_bytes=16 * 1024)
    list(wal.replay())
    stop = threading.Event()
    errors: list[BaseException] = []
    syncs = 0

    def syncer():
        nonlocal syncs
        try:
            while not stop.is_set():
                wal.sync()
                syncs += 1
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=syncer)
    thread.start()
    try:
        for zxid in range(1, 5001):
            wal.append(zxid, payload_for(zxid))
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert errors == []
    assert syncs > 0
    assert len(segments(tmp_path)) > 3  # rolls happened while syncing
    wal.close()
    if has_proc:
        assert _open_fds() == fds_before  # retired segments were closed
    assert replay_all(tmp_path) == expected(range(1, 5001))


# -- a real crash -----------------------------------------------------------------------------

CHILD = """
import sys
from pathlib import Path
from dcli_server.storage.wal import FsyncMode, WriteAheadLog

wal = WriteAheadLog(Path(sys.argv[1]), fsync=FsyncMode.OFF, segment_bytes=4096)
for zxid in range(1, 1_000_001):
    wal.append(zxid, b"payload-%d" % zxid * (zxid % 7))
    sys.stdout.write(f"{zxid}\\n")
    sys.stdout.flush()
"""


def read_lines(fd: int, want: int, timeout: float) -> list[str]:
    """Lines from a pipe until `want` of them arrived, EOF, or the deadline."""
    deadline = time.monotonic() + timeout
    buf = b""
    while buf.count(b"\n") < want:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    return buf.decode().split("\n")[:-1]  # only whole lines


def test_appended_records_survive_sigkill(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, bufsize=0
    )
    try:
        printed = read_lines(proc.stdout.fileno(), want=2000, timeout=60)
        assert len(printed) >= 2000, f"child printed only {len(printed)} lines"
        proc.send_signal(signal.SIGKILL)
        # Whatever the child printed before dying was also appended before it printed.
        printed += read_lines(proc.stdout.fileno(), want=10**9, timeout=60)
    finally:
        proc.kill()
        proc.wait(timeout=60)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    acknowledged = [int(line) for line in printed]
    replayed = [z for z, _ in replay_all(tmp_path)]
    assert len(segments(tmp_path)) > 1
    # Every acknowledged zxid is there, in order, with nothing missing before it.
    assert replayed[: len(acknowledged)] == acknowledged
    assert replayed == list(range(1, len(replayed) + 1))


@pytest.mark.parametrize("cut", [1, 13, 57, 100, 101])
def test_truncate_from_drops_the_tail_durably_and_takes_new_records(tmp_path, cut):
    write(tmp_path, range(1, 101), segment_bytes=300)
    with WriteAheadLog(tmp_path, segment_bytes=300) as wal:
        wal.last_zxid                                  # recovers
        wal.truncate_from(cut)
        assert wal.last_zxid == min(cut, 101) - 1
        wal.append(cut, b"new")
    kept = expected(range(1, min(cut, 101)))
    assert replay_all(tmp_path) == kept + [(cut, b"new")]
    for path in segments(tmp_path):                    # names still match first records
        first = int.from_bytes(path.read_bytes()[12:20], "big")
        assert path.name == f"log.{first:020d}"
