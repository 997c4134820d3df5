"""The write-ahead log: segment files of CRC-checked records, fsync policy, crash recovery.

The log owns every byte under its directory. It is a sequence of segment files named
``log.<zxid of the first record, 20 decimal digits>``; each holds records back to back::

    offset  size  field
    0       4     magic   b"DWL1" (marks a record start; "1" is the format version)
    4       4     crc     zlib.crc32 over bytes 8.. of the record (length, zxid, payload), big-endian
    8       4     length  payload length in bytes, big-endian unsigned
    12      8     zxid    big-endian unsigned, strictly increasing across the whole log
    20      n     payload

Recovery (``replay``) tells a torn tail from damage. A crash can only tear the record being
written last, so on a bad record at offset X we look for any valid record after it (a magic,
a sane length that fits, a matching CRC), in the rest of that file and in every later segment.
None: the bytes from X on are a torn tail and are cut off. One: something damaged data that was
already acknowledged, and we raise ``CorruptLogError`` so the server refuses to start instead of
silently dropping acknowledged writes.

Usage::

    wal = WriteAheadLog(data_dir / "wal", fsync=FsyncMode.ALWAYS)
    for zxid, payload in wal.replay(after_zxid=snapshot_zxid):
        apply(zxid, payload)
    wal.append(next_zxid, payload)   # on the event loop: one os.write, no fsync
    wal.append_many(records)         # (zxid, payload) pairs in order: one os.write per segment
    wal.sync()                       # in a worker thread: one fsync for many appends

Threading: ``append`` (one thread) may run while ``sync`` runs in another. Appends take a short
lock; ``sync`` captures the descriptors to flush under that lock and fsyncs outside it, so the
event loop never waits for the disk. A segment retired by a roll stays open until a ``sync`` has
flushed it.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import struct
import threading
import time
import zlib
from pathlib import Path

from dcli_server.storage.files import fsync_dir, numbered_files
from typing import Iterable, Iterator

log = logging.getLogger(__name__)

MAGIC = b"DWL1"
_HEADER = struct.Struct(">4sIIQ")  # magic, crc, length, zxid
HEADER_BYTES = _HEADER.size
_CRC_FROM = 8  # the CRC covers the length, the zxid and the payload
# A "sane length" while scanning for valid records; also the largest payload append accepts.
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024
_SEGMENT_NAME = re.compile(r"log\.(\d{20})")


class FsyncMode(str, enum.Enum):
    ALWAYS = "always"
    BATCH = "batch"
    OFF = "off"


class CorruptLogError(Exception):
    """The log is damaged where a crash cannot explain it; starting would lose data."""

    def __init__(self, path: Path, offset: int, problem: str) -> None:
        super().__init__(path, offset, problem)
        self.path = Path(path)
        self.offset = offset
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"corrupt write-ahead log {self.path} at byte offset {self.offset}: {self.problem}; "
            "the server refuses to start rather than lose acknowledged data"
        )


def encode_record(zxid: int, payload: bytes) -> bytes:
    body = struct.pack(">IQ", len(payload), zxid)
    crc = zlib.crc32(payload, zlib.crc32(body))
    return MAGIC + struct.pack(">I", crc) + body + payload


def _parse(buf: bytes, pos: int) -> tuple[int, int] | str:
    """(zxid, end offset) of the record at pos, or what is wrong with it."""
    if len(buf) - pos < HEADER_BYTES:
        return f"short header ({len(buf) - pos} of {HEADER_BYTES} bytes)"
    magic, crc, length, zxid = _HEADER.unpack_from(buf, pos)
    if magic != MAGIC:
        return f"bad record marker {magic!r}"
    if length > MAX_PAYLOAD_BYTES:
        return f"implausible payload length {length}"
    end = pos + HEADER_BYTES + length
    if end > len(buf):
        return f"short payload ({len(buf) - pos - HEADER_BYTES} of {length} bytes)"
    if zlib.crc32(memoryview(buf)[pos + _CRC_FROM : end]) != crc:
        return "CRC mismatch"
    return zxid, end


def _find_valid_record(buf: bytes, start: int) -> int | None:
    pos = buf.find(MAGIC, start)
    while pos != -1:
        if not isinstance(_parse(buf, pos), str):
            return pos
        pos = buf.find(MAGIC, pos + 1)
    return None


def _truncate(path: Path, size: int) -> None:
    """Cut the file to `size` bytes, durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


# fdatasync skips the inode timestamps; the file size it does flush, which is all we need.
_datasync = getattr(os, "fdatasync", os.fsync)


class WriteAheadLog:
    def __init__(
        self,
        directory: Path,
        *,
        fsync: FsyncMode = FsyncMode.ALWAYS,
        segment_bytes: int = 64 * 1024 * 1024,
        batch_interval_s: float = 0.1,
    ) -> None:
        if segment_bytes <= 0:
            raise ValueError("segment_bytes must be positive")
        self.directory = Path(directory)
        self.fsync_mode = FsyncMode(fsync)
        self.segment_bytes = segment_bytes
        self.batch_interval_s = batch_interval_s
        # _lock guards the fields below and is never held across an fsync. _sync_lock
        # serialises sync() and close(), so a second sync cannot return while an earlier
        # one is still flushing records it took over.
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._recovered = False
        self._closed = False
        self._failed: BaseException | None = None
        self._last_zxid = 0
        self._segments: list[tuple[int, Path]] = []  # (first zxid, path), oldest first
        self._fd: int | None = None  # the active (last) segment, opened on first append
        self._active_size = 0
        self._dirty = False  # the active fd has writes no fsync has covered yet
        self._retired: list[int] = []  # rolled-away fds waiting for an fsync, then close
        self._dir_dirty = False  # a segment was created since the last directory fsync
        self._last_fsync = float("-inf")

    # -- recovery ---------------------------------------------------------------------------

    def replay(self, after_zxid: int = 0) -> Iterator[tuple[int, bytes]]:
        """Yield (zxid, payload) of every record with zxid > after_zxid, in order, across
        segments. Call once, before the first append. Records are yielded as they are read,
        so a CorruptLogError can come after some records were yielded; the caller stops then.
        A torn tail is cut off the log (file truncated, fsync'd); damage anywhere else raises
        CorruptLogError. An empty or missing directory yields nothing."""
        if self._fd is not None:
            raise RuntimeError("replay() must come before the first append()")
        return self._scan(after_zxid)

    def _ensure_recovered(self) -> None:
        if not self._recovered:
            for _ in self._scan(after_zxid=2**64):
                pass

    def _list_segments(self) -> list[tuple[int, Path]]:
        return numbered_files(self.directory, _SEGMENT_NAME)

    def _scan(self, after_zxid: int) -> Iterator[tuple[int, bytes]]:
        segments = self._list_segments()
        prev_zxid = 0
        kept: list[tuple[int, Path, int]] = []  # (first zxid, path, size) of non-empty segments
        empty: list[Path] = []  # segments without records, waiting to see if any follow
        for index, (name_zxid, path) in enumerate(segments):
            data = path.read_bytes()
            pos = 0
            torn = False
            while pos < len(data):
                parsed = _parse(data, pos)
                if isinstance(parsed, str):
                    self._cut_torn_tail(path, pos, parsed, data, segments[index + 1 :])
                    torn = True
                    break
                zxid, end = parsed
                if empty:
                    raise CorruptLogError(
                        empty[0], 0, "segment holds no records but later segments do"
                    )
                if pos == 0 and zxid != name_zxid:
                    raise CorruptLogError(
                        path, 0, f"first record has zxid {zxid}, the file name says {name_zxid}"
                    )
                if zxid <= prev_zxid:
                    raise CorruptLogError(
                        path, pos, f"zxid {zxid} does not follow the previous zxid {prev_zxid}"
                    )
                if zxid > after_zxid:
                    yield zxid, data[pos + HEADER_BYTES : end]
                prev_zxid = zxid
                pos = end
            if pos == 0:
                empty.append(path)
            else:
                kept.append((name_zxid, path, pos))
            if torn:
                break  # _cut_torn_tail removed the later segments
        # Empty trailing segments (a crash right after a roll, or a torn first record) go, so
        # that the next segment is named after the record actually written first into it.
        for path in empty:
            log.warning("removing write-ahead log segment %s: it holds no records", path)
            path.unlink()
        if empty:
            fsync_dir(self.directory)
        self._segments = [(first, path) for first, path, _ in kept]
        self._active_size = kept[-1][2] if kept else 0
        self._last_zxid = prev_zxid
        self._recovered = True

    def _cut_torn_tail(
        self, path: Path, pos: int, problem: str, data: bytes, later: list[tuple[int, Path]]
    ) -> None:
        follow = _find_valid_record(data, pos + 1)
        if follow is not None:
            raise CorruptLogError(
                path, pos, f"{problem}, yet a valid record follows at byte offset {follow}"
            )
        for _, other in later:
            follow = _find_valid_record(other.read_bytes(), 0)
            if follow is not None:
                raise CorruptLogError(
                    path,
                    pos,
                    f"{problem}, yet a valid record follows in {other.name} at byte offset {follow}",
                )
        log.warning(
            "write-ahead log %s: cutting a torn tail of %d bytes at byte offset %d (%s)",
            path, len(data) - pos, pos, problem,
        )
        _truncate(path, pos)
        # Later segments hold no valid record (checked above): leftovers of the same crash.
        for _, other in later:
            log.warning("removing write-ahead log segment %s: no valid record in it", other)
            other.unlink()
        if later:
            fsync_dir(self.directory)

    # -- writing ----------------------------------------------------------------------------

    @property
    def last_zxid(self) -> int:
        """The last appended or replayed zxid, 0 when the log is empty."""
        self._ensure_recovered()
        return self._last_zxid

    def append(self, zxid: int, payload: bytes) -> None:
        """Hand one record to the OS (it survives kill -9 once this returns, even with fsync
        OFF; durability against power loss comes from sync()). Rolls to a new segment when
        the current one has reached segment_bytes."""
        self.append_many(((zxid, payload),))

    def append_many(self, records: Iterable[tuple[int, bytes]]) -> None:
        """`append` for several (zxid, payload) records in order, in one write per segment
        they land in. Nothing is written if any record is invalid."""
        encoded = []
        for zxid, payload in records:
            if len(payload) > MAX_PAYLOAD_BYTES:
                raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
            encoded.append((zxid, encode_record(zxid, payload)))
        if not encoded:
            return
        self._ensure_recovered()
        with self._lock:
            self._check_usable()
            last = self._last_zxid
            for zxid, _ in encoded:
                if zxid <= last:
                    raise ValueError(f"zxid {zxid} does not follow the last zxid {last}")
                last = zxid
            chunk = bytearray()
            chunk_last = self._last_zxid
            for zxid, record in encoded:
                if self._fd is None or self._active_size + len(chunk) >= self.segment_bytes:
                    self._write_locked(chunk, chunk_last)
                    chunk = bytearray()
                    self._open_for_append(zxid)
                chunk += record
                chunk_last = zxid
            self._write_locked(chunk, chunk_last)

    def _write_locked(self, chunk: bytearray, last_zxid: int) -> None:
        """Write `chunk` (whole records up to `last_zxid`) to the active segment."""
        if not chunk:
            return
        assert self._fd is not None
        start = self._active_size
        try:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            # A half-written record followed by later ones would read as damage, so take
            # it back; if even that fails, the log cannot be trusted any more.
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                self._failed = exc
            raise
        self._active_size = start + len(chunk)
        self._last_zxid = last_zxid
        self._dirty = True

    def _open_for_append(self, zxid: int) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        if self._fd is None and self._segments and self._active_size < self.segment_bytes:
            self._fd = os.open(self._segments[-1][1], flags)
            # Replayed records may never have been fsync'd by the previous process.
            self._dirty = True
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"log.{zxid:020d}"
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
        if self._fd is not None:
            # Even a clean fd may be in the middle of an fsync in sync(); only a flush, which
            # runs after that one, may close it. With OFF nothing ever fsyncs.
            if self.fsync_mode is FsyncMode.OFF:
                os.close(self._fd)
            else:
                self._retired.append(self._fd)
        self._fd = fd
        self._dirty = False
        self._active_size = 0
        self._segments.append((zxid, path))
        self._dir_dirty = True

    def sync(self) -> None:
        """Make everything appended so far durable as the mode says: ALWAYS fsyncs now,
        BATCH only if batch_interval_s passed since the last fsync, OFF does nothing."""
        if self.fsync_mode is FsyncMode.OFF:
            return
        with self._sync_lock:
            if self._closed:
                return
            if (
                self.fsync_mode is FsyncMode.BATCH
                and time.monotonic() - self._last_fsync < self.batch_interval_s
            ):
                return
            self._flush()

    def _flush(self) -> None:
        """fsync what was appended before the call. Caller holds _sync_lock, which also keeps
        close() from closing the descriptors under us."""
        with self._lock:
            self._check_usable()
            retired, self._retired = self._retired, []
            active = self._fd if self._dirty else None
            self._dirty = False
            dir_dirty, self._dir_dirty = self._dir_dirty, False
        try:
            for fd in retired:
                _datasync(fd)
            if active is not None:
                _datasync(active)
            if dir_dirty:
                fsync_dir(self.directory)
        except OSError as exc:
            # After a failed fsync the kernel may have dropped the dirty pages; retrying would
            # report success for lost data. Refuse all further writes instead.
            with self._lock:
                self._failed = exc
            raise
        finally:
            for fd in retired:
                os.close(fd)
        self._last_fsync = time.monotonic()

    def _check_usable(self) -> None:
        if self._closed:
            raise ValueError("write-ahead log is closed")
        if self._failed is not None:
            raise OSError(f"write-ahead log is unusable after an I/O error: {self._failed}")

    # -- housekeeping -----------------------------------------------------------------------

    def purge_before(self, zxid: int) -> None:
        """Delete whole segment files all of whose records have zxid <= zxid, never the
        active (last) one."""
        self._ensure_recovered()
        with self._lock:
            # Segment i holds zxids below the first zxid of segment i + 1.
            victims = []
            while len(self._segments) > 1 and self._segments[1][0] - 1 <= zxid:
                victims.append(self._segments.pop(0)[1])
        for path in victims:
            path.unlink(missing_ok=True)

    def truncate_from(self, zxid: int) -> None:
        """Remove every record with zxid >= `zxid`, durably (a consensus log replacing its
        uncommitted tail). Must not run while a sync() is in progress in another thread."""
        self._ensure_recovered()
        with self._sync_lock, self._lock:
            self._check_usable()
            if zxid > self._last_zxid:
                return
            # close every descriptor first: the files change under them
            for fd in self._retired + ([self._fd] if self._fd is not None else []):
                os.close(fd)
            self._retired, self._fd, self._dirty = [], None, False
            while self._segments and self._segments[-1][0] >= zxid:
                self._segments.pop()[1].unlink()
            last, size = 0, 0
            if self._segments:
                path = self._segments[-1][1]
                data = path.read_bytes()
                pos = 0
                while pos < len(data):
                    parsed = _parse(data, pos)
                    if isinstance(parsed, str) or parsed[0] >= zxid:
                        break
                    last, pos = parsed[0], parsed[1]
                _truncate(path, pos)
                size = pos
            if self.directory.is_dir():
                fsync_dir(self.directory)
            self._last_zxid, self._active_size = last, size

    def close(self) -> None:
        """Flush (unless fsync is OFF) and close. Further appends raise ValueError."""
        with self._sync_lock:
            if self._closed:
                return
            try:
                if self.fsync_mode is not FsyncMode.OFF and self._failed is None:
                    self._flush()
            finally:
                with self._lock:
                    self._closed = True
                    fds = self._retired + ([self._fd] if self._fd is not None else [])
                    self._retired, self._fd = [], None
                for fd in fds:
                    os.close(fd)

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
