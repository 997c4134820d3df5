"""One partition's durable log: segment files of record batches, sparse indexes, retention,
compaction and crash recovery, laid out as Kafka lays them out (kafka.md section 5.5).

The partition's directory holds, per segment, files named by the segment's base offset::

    00000000000000000000.log        record batches back to back, exactly as stored
    00000000000000000000.index      (relative offset int32, file position int32) per
                                    index.interval.bytes of log: the batch's last offset and
                                    where the batch starts
    00000000000000000000.timeindex  (timestamp int64, relative offset int32) whenever the
                                    largest timestamp so far grew at an index entry

The log never decodes records on the append path: it checks the header and the CRC, writes the
producer's bytes with the base offset and leader epoch rewritten (neither is under the CRC),
and moves on, so an append costs the same for one record as for a thousand.

Recovery (on open) reads every segment batch by batch and checks each CRC; the indexes are
rebuilt from that scan whenever the files on disk differ from it (missing, torn, stale), so
they need no fsync of their own. The last segment may end in a torn batch, which is cut off
with a warning. Damage anywhere else raises CorruptSegmentError naming the file and position:
a segment is fsync'd before the next one is created, so no crash explains it, and dropping the
data after it would lose acknowledged records.

Usage::

    log = PartitionLog(data_dir / "chat-0", LogConfig.from_properties({"segment.bytes": "1048576"}))
    info = log.append(batch_bytes)       # under one lock: header checks, one writev
    log.flush()                          # fsync, from any thread; cheap when nothing is new
    data = log.read(offset, 1 << 20, max_offset=high_watermark)
    log.delete_old_segments()            # retention, from a housekeeping thread
    log.close()

Threading: `_lock` guards the segments and the active files and is held by append, read and
every change of the segment list, never across an fsync of new data. `flush` takes a snapshot
under it and fsyncs outside; `_sync_lock` keeps anything that closes descriptors from running
under that fsync. `_cleaner_lock` makes compaction, retention and truncation take turns, so
compaction can read closed segments without holding `_lock`.
"""
from __future__ import annotations

import logging
import os
import re
import struct
import threading
import time
from array import array
from bisect import bisect_right
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

from dcli.wire.errors import (
    CorruptRecordError, InvalidRecordError, OffsetOutOfRangeError,
    RecordBatchTooLargeError, RecordTooLargeError, UnsupportedCompressionTypeError,
)
from dcli.wire.records import (
    INT32_MAX, MAGIC, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD, BatchHeader, Compression, Record,
    build_batch, decode_records, has_null_key, parse_header, validate_batch,
)
from dcli_server.storage.files import fsync_dir, numbered_files
from dcli_server.storage.log_config import LogConfig
from dcli_server.storage.wal import CorruptLogError

log = logging.getLogger(__name__)

_LOG_NAME = re.compile(r"(\d{20})\.log")
_INDEX_NAME = re.compile(r"(\d{20})\.(?:index|timeindex)")
_CLEANED_SUFFIX = ".cleaned"
_INDEX_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
_PREFIX = struct.Struct(">qii")  # baseOffset, batchLength, partitionLeaderEpoch: bytes 0..16
_SCAN_CHUNK = 1 << 20  # recovery and compaction read this much at a time
_LOCATE_CHUNK = 8192  # finding a batch from an index entry: a few headers, 4 KiB apart
_datasync = getattr(os, "fdatasync", os.fsync)


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class CorruptSegmentError(CorruptLogError):
    """A segment is damaged where no crash can explain it; opening would drop data."""

    def __str__(self) -> str:
        return (f"corrupt partition log segment {self.path} at byte position {self.offset}: "
                f"{self.problem}; refusing to open the partition rather than drop the data after it")


class AppendInfo(NamedTuple):
    base_offset: int
    last_offset: int
    log_append_time: int  # -1: the batch keeps its create times (Kafka's answer for CreateTime)


class SegmentInfo(NamedTuple):
    base_offset: int
    size_bytes: int
    path: Path


# -- one segment --------------------------------------------------------------------------------


class _Window:
    """Reads of a file through one buffer of `chunk` bytes, refilled when a read leaves it."""

    def __init__(self, fd: int, chunk: int) -> None:
        self.fd, self.chunk = fd, chunk
        self.start, self.data = 0, b""

    def read(self, pos: int, n: int) -> memoryview:
        if pos < self.start or pos + n > self.start + len(self.data):
            self.data = os.pread(self.fd, max(n, self.chunk), pos)
            self.start = pos
        at = pos - self.start
        return memoryview(self.data)[at : at + n]


class _Segment:
    """One segment's files and what the log keeps in memory about them: the sparse indexes
    as arrays (the files are only their copy on disk), the size, the largest timestamp."""

    def __init__(self, directory: Path, base_offset: int) -> None:
        self.base_offset = base_offset
        stem = f"{base_offset:020d}"
        self.path = directory / f"{stem}.log"
        self.index_path = directory / f"{stem}.index"
        self.timeindex_path = directory / f"{stem}.timeindex"
        self.fd: int | None = None
        self.reset()

    def reset(self) -> None:
        self.size = 0
        self.next_offset = self.base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = self.base_offset
        self.first_timestamp = NO_TIMESTAMP
        self.index_offsets = array("i")
        self.index_positions = array("i")
        self.time_stamps = array("q")
        self.time_offsets = array("i")
        self.bytes_since_index = 0
        self.rolling_base_ms: int | None = None

    def add_batch(self, position: int, last_offset: int, max_timestamp: int, size: int,
                  interval: int) -> tuple[bytes, bytes]:
        """Account for a batch written at `position`; returns the index and time-index entries
        to add to the files (b"" for none). Kafka's LogSegment.append rule, so that a rebuild
        from the log gives the same files as the appends did."""
        if self.size == 0:
            self.first_timestamp = max_timestamp
        if max_timestamp > self.max_timestamp:
            self.max_timestamp, self.offset_of_max_timestamp = max_timestamp, last_offset
        entry = time_entry = b""
        if self.bytes_since_index > interval:
            relative = last_offset - self.base_offset
            self.index_offsets.append(relative)
            self.index_positions.append(position)
            entry = _INDEX_ENTRY.pack(relative, position)
            time_entry = self.time_entry()
            self.bytes_since_index = 0
        self.bytes_since_index += size
        self.size = position + size
        self.next_offset = last_offset + 1
        return entry, time_entry

    def time_entry(self) -> bytes:
        """A time-index entry for the largest timestamp so far, if it grew since the last one;
        also called when the segment stops being the active one."""
        last = self.time_stamps[-1] if self.time_stamps else NO_TIMESTAMP
        if self.max_timestamp <= last:
            return b""
        relative = self.offset_of_max_timestamp - self.base_offset
        self.time_stamps.append(self.max_timestamp)
        self.time_offsets.append(relative)
        return _TIME_ENTRY.pack(self.max_timestamp, relative)

    def lookup(self, offset: int) -> int:
        """File position at or before the batch holding `offset`."""
        i = bisect_right(self.index_offsets, offset - self.base_offset) - 1
        return self.index_positions[i] if i >= 0 else 0

    def index_bytes(self) -> bytes:
        return b"".join(map(_INDEX_ENTRY.pack, self.index_offsets, self.index_positions))

    def timeindex_bytes(self) -> bytes:
        return b"".join(map(_TIME_ENTRY.pack, self.time_stamps, self.time_offsets))

    def largest_timestamp(self) -> int:
        """What retention.ms measures: the newest record's time, or the file's (Kafka's
        fallback) when no batch carries one."""
        if self.max_timestamp >= 0:
            return self.max_timestamp
        return int(os.stat(self.path).st_mtime * 1000)

    def headers(self, start: int, chunk: int) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each batch from file position `start` on."""
        window = _Window(self.fd, chunk)
        pos = start
        while pos < self.size:
            h = parse_header(window.read(pos, RECORD_BATCH_OVERHEAD))
            yield pos, h
            pos += h.size

    def files(self) -> tuple[Path, Path, Path]:
        return self.path, self.index_path, self.timeindex_path


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_RW = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC


# -- the log --------------------------------------------------------------------------------------


class PartitionLog:
    """The log of one partition in `directory` (named `<topic>-<partition>`)."""

    def __init__(self, directory: Path, config: LogConfig | None = None, *,
                 clock: Callable[[], int] = _wall_clock_ms) -> None:
        self.directory = Path(directory)
        self.name = self.directory.name
        self.config = config or LogConfig()
        self._clock = clock  # milliseconds; injectable so tests can roll and expire segments
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._cleaner_lock = threading.Lock()
        self._closed = False
        self._failed: BaseException | None = None
        self._dirty = False  # the active segment has writes no fsync has covered
        self._index_fds: tuple[int, int] | None = None  # the active segment's index files
        self._segments: list[_Segment] = []
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._recover()
            self._activate(self._segments[-1])
        except BaseException:
            self._close_fds()
            raise
        self._leo = self._segments[-1].next_offset

    # -- recovery ---------------------------------------------------------------------------

    def _recover(self) -> None:
        self._remove_leftovers()
        found = numbered_files(self.directory, _LOG_NAME)
        if not found:
            self._segments.append(self._create_segment(0))
            return
        for i, (base, _) in enumerate(found):
            upper = found[i + 1][0] if i + 1 < len(found) else None
            segment = _Segment(self.directory, base)
            self._segments.append(segment)  # first, so that a failure closes its descriptor
            self._load(segment, upper)

    def _remove_leftovers(self) -> None:
        """Compaction output that never replaced its segment, and indexes without a log."""
        logs = {p.name for _, p in numbered_files(self.directory, _LOG_NAME)}
        stray = [p for p in self.directory.iterdir() if p.name.endswith(_CLEANED_SUFFIX)]
        stray += [p for _, p in numbered_files(self.directory, _INDEX_NAME)
                  if p.name.split(".")[0] + ".log" not in logs]
        for path in stray:
            log.warning("partition log %s: removing leftover file %s", self.name, path.name)
            path.unlink()
        if stray:
            fsync_dir(self.directory)

    def _load(self, segment: _Segment, upper: int | None) -> None:
        """Read a segment whole, checking every batch; `upper` is the next segment's base
        offset (None for the last segment, whose torn tail is cut off)."""
        segment.fd = os.open(segment.path, _RW)
        file_size = os.fstat(segment.fd).st_size
        pos, problem = self._scan(segment, file_size, upper)
        if problem is not None:
            # A crash tears only the end of what was being written: a bad batch followed by a
            # good one is damage in the middle (bit rot, a bad sector), not a torn tail, and
            # cutting there would drop records that were acknowledged
            if upper is not None or self._valid_batch_after(segment, pos, file_size):
                raise CorruptSegmentError(segment.path, pos, problem)
            log.warning("partition log %s: cutting a torn tail of %d bytes at byte position %d "
                        "of %s (%s)", self.name, file_size - pos, pos, segment.path.name, problem)
            os.ftruncate(segment.fd, pos)
            os.fsync(segment.fd)
        if upper is not None:
            segment.time_entry()  # a closed segment's time index ends with its largest timestamp
        self._write_indexes_if_stale(segment)

    @staticmethod
    def _valid_batch_after(segment: _Segment, pos: int, size: int) -> bool:
        """Whether the bad batch at `pos` has a length that leads to a whole, valid batch."""
        window = _Window(segment.fd, _SCAN_CHUNK)
        if size - pos < RECORD_BATCH_OVERHEAD:
            return False
        h = parse_header(window.read(pos, RECORD_BATCH_OVERHEAD))
        after = pos + h.size
        if h.magic != MAGIC or h.size < RECORD_BATCH_OVERHEAD or size - after < RECORD_BATCH_OVERHEAD:
            return False
        nxt = parse_header(window.read(after, RECORD_BATCH_OVERHEAD))
        if nxt.magic != MAGIC or nxt.size < RECORD_BATCH_OVERHEAD or after + nxt.size > size:
            return False
        try:
            validate_batch(window.read(after, nxt.size))
        except CorruptRecordError:
            return False
        return True

    def _scan(self, segment: _Segment, size: int, upper: int | None) -> tuple[int, str | None]:
        """Feed every valid batch to the segment's in-memory state; (position, problem) of
        the first one that is not valid, or (size, None)."""
        window = _Window(segment.fd, _SCAN_CHUNK)
        interval = self.config.index_interval_bytes
        pos = 0
        while pos < size:
            if size - pos < RECORD_BATCH_OVERHEAD:
                return pos, f"short batch header ({size - pos} of {RECORD_BATCH_OVERHEAD} bytes)"
            h = parse_header(window.read(pos, RECORD_BATCH_OVERHEAD))
            if h.magic == MAGIC and h.size >= RECORD_BATCH_OVERHEAD and pos + h.size > size:
                return pos, f"short batch ({size - pos} of {h.size} bytes)"
            try:
                # Bounded by the file: a garbage length must not make us read gigabytes.
                validate_batch(window.read(pos, min(max(h.size, RECORD_BATCH_OVERHEAD), size - pos)))
            except CorruptRecordError as exc:
                return pos, str(exc)
            if h.base_offset < segment.next_offset:
                return pos, (f"batch at offset {h.base_offset} does not follow the previous "
                             f"batch, which ends before offset {segment.next_offset}")
            if upper is not None and h.last_offset >= upper:
                return pos, (f"batch ends at offset {h.last_offset}, not below the next "
                             f"segment's base offset {upper}")
            if h.last_offset - segment.base_offset > INT32_MAX:
                return pos, f"offset {h.last_offset} is too far from the segment's base offset"
            segment.add_batch(pos, h.last_offset, h.max_timestamp, h.size, interval)
            pos += h.size
        return pos, None

    def _write_indexes_if_stale(self, segment: _Segment, *, expected: bool = False) -> None:
        """Make the index files say what the in-memory indexes say; a difference is worth a
        warning unless the caller just changed the log (`expected`)."""
        for path, wanted in ((segment.index_path, segment.index_bytes()),
                             (segment.timeindex_path, segment.timeindex_bytes())):
            try:
                on_disk = path.read_bytes()
            except FileNotFoundError:
                on_disk = None
            if on_disk == wanted:
                continue
            if on_disk is not None and not expected:
                log.warning("partition log %s: rebuilding %s, which does not match its log",
                            self.name, path.name)
            path.write_bytes(wanted)

    # -- segment files ----------------------------------------------------------------------

    def _create_segment(self, base_offset: int) -> _Segment:
        segment = _Segment(self.directory, base_offset)
        segment.fd = os.open(segment.path, _RW | os.O_CREAT | os.O_EXCL, 0o644)
        for path in (segment.index_path, segment.timeindex_path):
            path.write_bytes(b"")
        fsync_dir(self.directory)
        return segment

    def _activate(self, segment: _Segment) -> None:
        """Make `segment` the one appends go to: open its index files for appending and
        decide when time-based rolling counts from."""
        if self._index_fds is not None:
            for fd in self._index_fds:
                os.close(fd)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._index_fds = (os.open(segment.index_path, flags, 0o644),
                           os.open(segment.timeindex_path, flags, 0o644))
        if segment.size:
            # Reopened: count from the first batch's time (when a producer with a sane clock
            # sent it), never from the future.
            first = segment.first_timestamp
            now = self._clock()
            segment.rolling_base_ms = min(first, now) if first >= 0 else now

    def _roll(self) -> _Segment:
        old = self._segments[-1]
        # No later segment may hold data while this one could still tear (see recovery).
        _datasync(old.fd)
        entry = old.time_entry()
        if entry:
            os.write(self._index_fds[1], entry)
        new = self._create_segment(self._leo)
        self._segments.append(new)
        self._activate(new)
        self._dirty = False  # old's data was just fsync'd; new holds none yet
        return new

    def _delete(self, victims: list[_Segment]) -> None:
        """Remove segments and their files; caller holds all three locks."""
        for segment in victims:
            self._segments.remove(segment)
            os.close(segment.fd)
            segment.fd = None
            for path in segment.files():
                path.unlink(missing_ok=True)
        if victims:
            fsync_dir(self.directory)

    # -- appending --------------------------------------------------------------------------

    def append(self, batch: bytes, *, leader_epoch: int = 0, header: BatchHeader | None = None) -> AppendInfo:
        """Validate one batch from a producer, give it the next offsets and write it. Raises
        RecordTooLargeError, CorruptRecordError, InvalidRecordError and friends with Kafka's
        wording. The batch is in the OS once this returns; `flush` makes it durable. `header`
        is what `validate_batch` returned for it when the caller checked it already (its CRC
        is not computed twice)."""
        config = self.config
        if len(batch) > config.max_message_bytes:
            raise RecordTooLargeError(message=(
                f"The record batch size in the append to {self.name} is {len(batch)} bytes which "
                f"exceeds the maximum configured value of {config.max_message_bytes}."))
        h = validate_batch(batch) if header is None else header
        self._check_client_batch(h, batch, config)
        with self._lock:
            self._check_usable()
            return self._append_locked(h, batch, self._leo, leader_epoch)

    def append_replicated(self, batch, header: BatchHeader) -> AppendInfo:
        """Append a batch as the leader stored it (a follower's copy): its base offset and
        leader epoch stay. Raises CorruptRecordError if it would go below the log end."""
        with self._lock:
            self._check_usable()
            if header.base_offset < self._leo:
                raise CorruptRecordError(message=(
                    f"Replicated batch at offset {header.base_offset} is below the log end "
                    f"{self._leo} of {self.name}."))
            return self._append_locked(header, batch, header.base_offset, header.partition_leader_epoch)

    def _append_locked(self, h: BatchHeader, batch, base: int, leader_epoch: int) -> AppendInfo:
        config = self.config
        last = base + h.last_offset_delta
        segment = self._segments[-1]
        now = self._clock()
        if segment.size and (
            segment.size + h.size > config.segment_bytes
            or now - segment.rolling_base_ms > config.segment_ms
            or last - segment.base_offset > INT32_MAX
        ):
            segment = self._roll()
        if segment.rolling_base_ms is None:
            segment.rolling_base_ms = now
        position = segment.size
        self._write(segment, _PREFIX.pack(base, h.batch_length, leader_epoch), batch, position)
        entry, time_entry = segment.add_batch(position, last, h.max_timestamp, h.size,
                                              config.index_interval_bytes)
        if entry:
            os.write(self._index_fds[0], entry)
        if time_entry:
            os.write(self._index_fds[1], time_entry)
        self._leo = last + 1
        self._dirty = True
        return AppendInfo(base, last, NO_TIMESTAMP)

    def _check_client_batch(self, h: BatchHeader, batch: bytes, config: LogConfig) -> None:
        """Kafka's LogValidator checks for a batch from a client (not from replication)."""
        name = self.name
        if h.size > config.segment_bytes:
            raise RecordBatchTooLargeError(message=(
                f"Message batch size is {h.size} bytes in append to partition {name} which "
                f"exceeds the maximum configured segment size of {config.segment_bytes}."))
        count = h.records_count
        if count <= 0:
            raise InvalidRecordError(message=(
                f"Invalid reported count for record batch: {count} in topic partition {name}."))
        if count != h.last_offset_delta + 1:
            raise InvalidRecordError(message=(
                f"Inconsistent batch offset range [{h.base_offset}, {h.last_offset}] and count "
                f"of records {count} in topic partition {name}."))
        if h.is_control:
            raise InvalidRecordError(message=(
                f"Clients are not allowed to write control records in topic partition {name}."))
        if h.compression not in (Compression.NONE, Compression.GZIP):
            raise UnsupportedCompressionTypeError(message=(
                "The requesting client does not support the compression type of given "
                f"partition. (compression {h.compression}; only none and gzip are supported)"))
        if config.compacts and has_null_key(batch):
            raise InvalidRecordError(message=(
                f"Compacted topic cannot accept message without key in topic partition {name}."))

    def _write(self, segment: _Segment, prefix: bytes, batch: bytes, position: int) -> None:
        """One writev of the new first 16 bytes and the producer's remaining bytes."""
        rest = memoryview(batch)[len(prefix) :]
        try:
            written = os.writev(segment.fd, [prefix, rest])
            if written < len(batch):
                _write_all(segment.fd, (prefix + bytes(rest))[written:])
        except OSError as exc:
            # A half-written batch followed by later ones would read as damage: take it back,
            # and if even that fails the log can no longer be trusted.
            try:
                os.ftruncate(segment.fd, position)
            except OSError:
                self._failed = exc
            raise

    def flush(self) -> None:
        """fsync what was appended before the call. Safe from any thread; returns at once when
        nothing was appended since the last flush. After a failed fsync the log refuses all
        writes (the kernel may have dropped the pages; a retry would report success)."""
        with self._sync_lock:
            with self._lock:
                if self._closed or not self._dirty:
                    return
                self._check_usable()
                fd = self._segments[-1].fd
                self._dirty = False
            try:
                _datasync(fd)
            except OSError as exc:
                with self._lock:
                    self._failed = exc
                raise

    def _check_usable(self) -> None:
        if self._closed:
            raise ValueError(f"partition log {self.name} is closed")
        if self._failed is not None:
            raise OSError(f"partition log {self.name} is unusable after an I/O error: {self._failed}")

    # -- reading ----------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        with self._lock:
            return self._segments[0].base_offset

    @property
    def log_end_offset(self) -> int:
        """The offset the next appended record gets."""
        with self._lock:
            return self._leo

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    @property
    def segments(self) -> list[SegmentInfo]:
        with self._lock:
            return [SegmentInfo(s.base_offset, s.size, s.path) for s in self._segments]

    def read(self, offset: int, max_bytes: int, max_offset: int | None = None) -> bytes:
        """Whole stored batches from the one holding `offset`, about max_bytes of them but
        at least one (Kafka's rule, so a batch larger than max_bytes still gets through), and
        none with a record at or above `max_offset` (the high watermark). b"" when there is
        nothing yet. Raises OffsetOutOfRangeError outside [log start, log end]."""
        with self._lock:
            self._check_usable()
            start = self._segments[0].base_offset
            if offset < start:
                raise OffsetOutOfRangeError(message=(
                    f"Received request for offset {offset} for partition {self.name}, but we only "
                    f"have log segments starting from offset: {start}."))
            if offset > self._leo:
                raise OffsetOutOfRangeError(message=(
                    f"Received request for offset {offset} for partition {self.name}, but we only "
                    f"have log segments upto {self._leo}."))
            limit = self._leo if max_offset is None else min(max_offset, self._leo)
            i = bisect_right([s.base_offset for s in self._segments], offset) - 1
            for segment in self._segments[i:]:
                if offset >= limit:
                    break
                data = self._read_segment(segment, offset, max_bytes, limit)
                if data:
                    return data
                # Nothing at or after `offset` here (compaction left a gap at the end).
                offset = max(offset, segment.next_offset)
            return b""

    def _read_segment(self, segment: _Segment, offset: int, max_bytes: int, limit: int) -> bytes:
        first = None
        for pos, h in segment.headers(segment.lookup(offset), _LOCATE_CHUNK):
            if h.last_offset >= offset:
                first = pos, h
                break
        if first is None:
            return b""
        pos, h = first
        if h.last_offset >= limit:
            return b""
        data = os.pread(segment.fd, min(max(max_bytes, h.size), segment.size - pos), pos)
        end = h.size
        while len(data) - end >= RECORD_BATCH_OVERHEAD:
            nxt = parse_header(data, end)
            if end + nxt.size > len(data) or nxt.last_offset >= limit:
                break
            end += nxt.size
        return data if end == len(data) else data[:end]

    def batch_headers(self, start_offset: int = 0) -> list[BatchHeader]:
        """Headers of the batches holding offsets from `start_offset` on, oldest first: what
        the producer state is rebuilt from."""
        with self._lock:
            self._check_usable()
            out = []
            for segment in self._segments:
                if segment.next_offset <= start_offset:
                    continue
                for _, h in segment.headers(segment.lookup(start_offset), _SCAN_CHUNK):
                    if h.last_offset >= start_offset:
                        out.append(h)
            return out

    # -- truncation and retention -----------------------------------------------------------

    def truncate_to(self, offset: int) -> None:
        """Drop every batch holding an offset at or after `offset` (a follower does this
        before fetching from a new leader); the next append gets `offset`, or the base offset
        of a batch that straddled it. Below the log start, the log starts over at `offset`."""
        with self._cleaner_lock, self._sync_lock, self._lock:
            self._check_usable()
            if offset >= self._leo:
                return
            bases = [s.base_offset for s in self._segments]
            last_kept = bisect_right(bases, offset) - 1  # the segment that will hold `offset`
            if last_kept < 0:
                self._start_over(offset)
                return
            # Later segments go first: a crash part way leaves a prefix of the old log.
            self._delete(list(reversed(self._segments[last_kept + 1 :])))
            segment = self._segments[-1]
            new_end = offset
            for pos, h in segment.headers(segment.lookup(offset), _LOCATE_CHUNK):
                if h.last_offset >= offset:
                    new_end = min(offset, h.base_offset)
                    os.ftruncate(segment.fd, pos)
                    os.fsync(segment.fd)
                    break
            segment.reset()
            self._scan(segment, os.fstat(segment.fd).st_size, None)
            self._write_indexes_if_stale(segment, expected=True)
            self._activate(segment)
            self._leo = new_end

    def restart_at(self, offset: int) -> None:
        """Drop the whole log; it starts over, empty, at `offset` (a follower whose log ends
        before its leader's log start)."""
        with self._cleaner_lock, self._sync_lock, self._lock:
            self._check_usable()
            self._start_over(offset)

    def _start_over(self, offset: int) -> None:
        fresh = self._create_segment(offset)
        self._delete(list(self._segments))
        self._segments.append(fresh)
        self._activate(fresh)
        self._leo = offset
        self._dirty = False

    def delete_old_segments(self, now_ms: int | None = None, *, max_offset: int | None = None) -> int:
        """Retention for cleanup.policy=delete: remove whole closed segments, oldest first,
        while they are older than retention.ms (by their newest record) or the log is larger
        than retention.bytes without them. Never the active segment, never one with offsets at
        or above `max_offset` (the high watermark). Returns how many went; the log start
        offset moves to the first segment left."""
        config = self.config
        if not config.deletes:
            return 0
        now = self._clock() if now_ms is None else now_ms
        with self._cleaner_lock, self._sync_lock, self._lock:
            self._check_usable()
            total = sum(s.size for s in self._segments)
            victims = []
            for segment, after in zip(self._segments, self._segments[1:]):
                if max_offset is not None and after.base_offset > max_offset:
                    break
                too_old = config.retention_ms >= 0 and (
                    now - segment.largest_timestamp() > config.retention_ms)
                too_big = config.retention_bytes >= 0 and total - segment.size >= config.retention_bytes
                if not (too_old or too_big):
                    break
                victims.append(segment)
                total -= segment.size
            self._delete(victims)
            return len(victims)

    # -- compaction -------------------------------------------------------------------------

    def compact(self, now_ms: int | None = None) -> int:
        """Cleanup for cleanup.policy=compact, over the closed segments: keep only the latest
        record of each key, and drop tombstones (null values) older than delete.retention.ms.
        Offsets never change: a batch that lost records is rebuilt with its original base and
        last offsets and the gaps inside it. Returns the number of records removed."""
        config = self.config
        if not config.compacts:
            return 0
        now = self._clock() if now_ms is None else now_ms
        with self._cleaner_lock:
            with self._lock:
                self._check_usable()
                closed = self._segments[:-1]
            latest: dict[bytes, int] = {}
            for segment in closed:
                for _, _, records in self._decoded(segment):
                    for r in records:
                        if r.key is not None:
                            latest[r.key] = r.offset
            horizon = now - config.delete_retention_ms

            def keep(r: Record) -> bool:
                return (r.key is not None and latest[r.key] == r.offset
                        and not (r.value is None and r.timestamp < horizon))

            removed = sum(self._clean(segment, keep) for segment in closed)
            with self._sync_lock, self._lock:
                # An emptied segment holds only a gap, which reads skip anyway; the first one
                # stays, as it marks the log start offset.
                self._delete([s for s in self._segments[1:-1] if s.size == 0])
            return removed

    def _decoded(self, segment: _Segment) -> Iterator[tuple[BatchHeader, memoryview, list[Record]]]:
        """Every batch of a closed segment, its bytes and its records (the cleaner lock keeps
        closed segments from changing under us)."""
        window = _Window(segment.fd, _SCAN_CHUNK)
        for pos, h in segment.headers(0, _SCAN_CHUNK):
            data = window.read(pos, h.size)
            yield h, data, decode_records(data)

    def _clean(self, segment: _Segment, keep: Callable[[Record], bool]) -> int:
        """Rewrite one closed segment with the records `keep` accepts; swap it in if any went."""
        cleaned = segment.path.with_name(segment.path.name + _CLEANED_SUFFIX)
        fresh = _Segment(self.directory, segment.base_offset)
        removed = 0
        fd = os.open(cleaned, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            for h, data, records in self._decoded(segment):
                kept = [r for r in records if keep(r)]
                removed += len(records) - len(kept)
                if not kept:
                    continue
                if len(kept) != len(records):
                    data = build_batch(
                        kept, base_offset=h.base_offset, last_offset_delta=h.last_offset_delta,
                        producer_id=h.producer_id, producer_epoch=h.producer_epoch,
                        base_sequence=h.base_sequence,
                        partition_leader_epoch=h.partition_leader_epoch,
                        timestamp_type=h.timestamp_type, compression=h.compression,
                        is_transactional=h.is_transactional,
                    )
                nh = parse_header(data)
                position = fresh.size
                _write_all(fd, data)
                fresh.add_batch(position, nh.last_offset, nh.max_timestamp, nh.size,
                                self.config.index_interval_bytes)
            if removed:
                os.fsync(fd)  # before the rename makes it the segment
        finally:
            os.close(fd)
        if not removed:
            cleaned.unlink()
            return 0
        fresh.time_entry()
        with self._sync_lock, self._lock:
            # Indexes first: a crash before the rename then leaves the old log with no index
            # (rebuilt on open) rather than with one that describes the cleaned log.
            segment.index_path.unlink(missing_ok=True)
            segment.timeindex_path.unlink(missing_ok=True)
            os.replace(cleaned, segment.path)
            fsync_dir(self.directory)
            old_fd, fresh.fd = segment.fd, os.open(segment.path, _RW)
            os.close(old_fd)
            self._segments[self._segments.index(segment)] = fresh
            self._write_indexes_if_stale(fresh, expected=True)
        log.info("partition log %s: compacted %s, %d records removed", self.name,
                 segment.path.name, removed)
        return removed

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """fsync what is pending and close every file. Further use raises ValueError."""
        with self._cleaner_lock, self._sync_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._dirty and self._failed is None:
                    _datasync(self._segments[-1].fd)
            finally:
                self._close_fds()

    def _close_fds(self) -> None:
        fds = [s.fd for s in self._segments if s.fd is not None] + list(self._index_fds or ())
        for segment in self._segments:
            segment.fd = None
        self._index_fds = None
        for fd in fds:
            os.close(fd)

    def __enter__(self) -> PartitionLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
