"""Kafka's record batch v2 (magic 2), byte for byte as DefaultRecordBatch and DefaultRecord.

Producer, broker and consumer share this codec: the producer builds batches, the broker checks
and stores them without looking at the records (header and CRC only, see `validate_batch`),
the consumer decodes them. Layout (big-endian; kafka.md section 5.6)::

    offset  size  field
    0       8     baseOffset              rewritten by the broker; not covered by the CRC
    8       4     batchLength             bytes after this field
    12      4     partitionLeaderEpoch    rewritten by the broker; not covered by the CRC
    16      1     magic (2)
    17      4     crc                     CRC-32C of bytes 21..end
    21      2     attributes              bits 0-2 compression, 3 timestamp type,
                                          4 transactional, 5 control, 6 delete horizon
    23      4     lastOffsetDelta
    27      8     baseTimestamp
    35      8     maxTimestamp
    43      8     producerId
    51      2     producerEpoch
    53      4     baseSequence
    57      4     records count
    61      ...   records (or their gzip stream)

Each record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint, key
(varint length, -1 = null), value (varint length, -1 = null), header count varint, headers
(key: varint length + UTF-8, value: varint length + bytes, -1 = null). Varints are zig-zag.

    >>> batch = build_batch([Record(key=b"k", value=b"v", timestamp=1000)], base_offset=5)
    >>> header = validate_batch(batch)
    >>> header.base_offset, header.next_offset, decode_records(batch)[0].value
    (5, 6, b'v')

Compression: none and gzip (standard library); snappy, lz4 and zstd are refused with
UnsupportedCompressionTypeError. A reader that does not trust the bytes passes `max_bytes` (the
batch's size once decompressed, Kafka's max.message.bytes): inflating stops one byte past it
with RecordTooLargeError, so a small gzip bomb never becomes a large buffer.

    >>> check_decompressed(batch, max_bytes=1048588)      # the broker, before it appends
    70
"""
from __future__ import annotations

import enum
import gzip
import struct
import time
import zlib
from typing import Iterator, NamedTuple, Sequence

from crc32c import crc32c

from dcli.wire.errors import CorruptRecordError, RecordTooLargeError, UnsupportedCompressionTypeError

MAGIC = 2
_HEADER = struct.Struct(">qiibIhiqqqhii")
RECORD_BATCH_OVERHEAD = _HEADER.size  # 61, Kafka's DefaultRecordBatch.RECORD_BATCH_OVERHEAD
LOG_OVERHEAD = 12  # baseOffset + batchLength: what precedes the length-counted part
CRC_START = 21
_MIN_RECORD_BYTES = 7  # length, attributes, timestampDelta, offsetDelta, key, value, headers
INT32_MAX = 2**31 - 1
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
NO_TIMESTAMP = -1

_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20
_DELETE_HORIZON_BIT = 0x40


class Compression(enum.IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class TimestampType(enum.IntEnum):
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class Record(NamedTuple):
    """One record. When building a batch, `offset` None means "next in the batch" and
    `timestamp` None means now; decoded records always carry both. (A NamedTuple rather than a
    dataclass: decoding builds one per record, and a frozen dataclass costs six times more.)"""

    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp: int | None = None
    offset: int | None = None


class BatchHeader(NamedTuple):
    """The 61-byte batch header, parsed without touching the records."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch takes."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & _COMPRESSION_MASK

    @property
    def timestamp_type(self) -> TimestampType:
        return TimestampType(bool(self.attributes & _TIMESTAMP_TYPE_BIT))

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL_BIT)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & _DELETE_HORIZON_BIT)

    @property
    def last_sequence(self) -> int:
        """Sequence of the last record; wraps past Int32.MAX to 0 as Kafka's does."""
        return increment_sequence(self.base_sequence, self.last_offset_delta)


def increment_sequence(sequence: int, increment: int) -> int:
    """Kafka's DefaultRecordBatch.incrementSequence: sequences wrap at Int32.MAX to 0."""
    if sequence == NO_SEQUENCE:
        return NO_SEQUENCE
    if sequence > INT32_MAX - increment:
        return increment - (INT32_MAX - sequence) - 1
    return sequence + increment


def parse_header(buf, pos: int = 0) -> BatchHeader:
    """The header at `pos`; the caller has checked that 61 bytes are there."""
    return BatchHeader._make(_HEADER.unpack_from(buf, pos))


def _corrupt(message: str) -> CorruptRecordError:
    return CorruptRecordError(message=message)


def _check_structure(h: BatchHeader) -> None:
    """What can be told wrong from the header alone: magic and the length field."""
    if h.magic != MAGIC:
        raise _corrupt(f"Record batch has magic {h.magic}; only magic {MAGIC} (record batch v2) "
                       "is supported")
    if h.size < RECORD_BATCH_OVERHEAD:
        raise _corrupt(f"Record batch is corrupt (the size {h.size} is smaller than the minimum "
                       f"allowed overhead {RECORD_BATCH_OVERHEAD})")


def validate_batch(data) -> BatchHeader:
    """Check one whole batch (bytes or memoryview) without decoding its records: magic,
    length, CRC-32C, and a record count that fits the offsets and the bytes. Returns its header;
    raises CorruptRecordError with what is wrong."""
    if len(data) < RECORD_BATCH_OVERHEAD:
        raise _corrupt(f"Record batch is corrupt (the size {len(data)} is smaller than the minimum "
                       f"allowed overhead {RECORD_BATCH_OVERHEAD})")
    h = parse_header(data)
    _check_structure(h)
    if h.size != len(data):
        raise _corrupt(f"Record batch length field says {h.size} bytes, but {len(data)} were given")
    computed = crc32c(memoryview(data)[CRC_START:])
    if computed != h.crc:
        raise _corrupt(f"Record is corrupt (stored crc = {h.crc}, computed crc = {computed})")
    count = h.records_count
    if count < 0 or h.last_offset_delta < 0 or (count > 0 and count > h.last_offset_delta + 1):
        raise _corrupt(f"Record batch has {count} records for the offset range "
                       f"[{h.base_offset}, {h.last_offset}]")
    if h.compression == Compression.NONE and count * _MIN_RECORD_BYTES > h.size - RECORD_BATCH_OVERHEAD:
        raise _corrupt(f"Record batch of {h.size} bytes cannot hold {count} records")
    return h


def iter_batches(buffer) -> Iterator[tuple[BatchHeader, object]]:
    """(header, batch) for each whole batch in `buffer`, back to back; batches are slices of
    the buffer's own type (pass a memoryview to avoid copies). Stops quietly at a truncated
    last batch, as a fetch response may end with one; raises CorruptRecordError on a header
    that cannot be a batch. Checks no CRC: see `validate_batch`."""
    pos, end = 0, len(buffer)
    while end - pos >= RECORD_BATCH_OVERHEAD:
        h = parse_header(buffer, pos)
        _check_structure(h)
        if pos + h.size > end:
            return
        yield h, buffer[pos : pos + h.size]
        pos += h.size


def _patch(data, fmt: str, at: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


def with_base_offset(data, base_offset: int) -> bytes:
    """The batch with its base offset rewritten; the CRC stays valid (it starts at byte 21)."""
    return _patch(data, ">q", 0, base_offset)


def with_leader_epoch(data, epoch: int) -> bytes:
    """The batch with its partition leader epoch rewritten; the CRC stays valid."""
    return _patch(data, ">i", 12, epoch)


# -- varints ------------------------------------------------------------------------------------


def _zigzag_bytes(value: int) -> bytes:
    z = (value << 1) ^ (value >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = {v: _zigzag_bytes(v) for v in range(-64, 64)}  # one byte each: the common case


def encode_varint(value: int) -> bytes:
    """Zig-zag varint (varlong for 64-bit values), as protobuf's sint32/sint64."""
    small = _SMALL.get(value)
    if small is not None:
        return small
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{value} does not fit in a varlong")
    return _zigzag_bytes(value)


def decode_varint(buf, pos: int, max_bytes: int = 10) -> tuple[int, int]:
    """(value, position after it). max_bytes is 5 for a varint, 10 for a varlong."""
    shift = result = 0
    for i in range(pos, min(pos + max_bytes, len(buf))):
        b = buf[i]
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), i + 1
        shift += 7
    if pos + max_bytes <= len(buf):
        raise _corrupt(f"Varint is too long, more than {max_bytes} bytes at position {pos}")
    raise _corrupt(f"Record ends inside a varint at position {pos}")


# -- building -----------------------------------------------------------------------------------

_NULL = encode_varint(-1)
_ZERO = encode_varint(0)


def _sized(data: bytes | None) -> bytes:
    if data is None:
        return _NULL
    return (_SMALL.get(len(data)) or encode_varint(len(data))) + data


def _encode_record(out: bytearray, r: Record, offset_delta: int, timestamp_delta: int) -> None:
    small = _SMALL.get
    body = b"".join((
        b"\x00",  # record attributes: unused
        small(timestamp_delta) or encode_varint(timestamp_delta),
        small(offset_delta) or encode_varint(offset_delta),
        _sized(r.key),
        _sized(r.value),
        _encode_headers(r.headers) if r.headers else _ZERO,
    ))
    out += small(len(body)) or encode_varint(len(body))
    out += body


_TWO_BYTE: dict[int, bytes] = {}  # every varint of one or two bytes; filled on first use


def _two_byte_varints() -> dict[int, bytes]:
    """-8192..8191 -> its zig-zag varint: lengths, deltas and counts of ordinary batches. Built
    on first use rather than at import (about 5 ms), which one-shot commands would pay."""
    if not _TWO_BYTE:
        for v in range(-8192, 8192):
            z = (v << 1) ^ (v >> 63)
            _TWO_BYTE[v] = bytes((z,)) if z < 0x80 else bytes(((z & 0x7F) | 0x80, z >> 7))
    return _TWO_BYTE


def _encode_plain_records(records, stamps: list[int], base_timestamp: int) -> bytes:
    """The records section for records numbered by position and without headers (what a
    producer sends): the per-record work of `_encode_record` with its calls inlined, about
    three times faster. Records are Record or plain tuples in Record's field order."""
    varint = _two_byte_varints()
    get = varint.get
    parts: list[bytes] = []
    add = parts.extend
    for delta, (r, ts) in enumerate(zip(records, stamps)):
        key, value = r[0], r[1]
        ts -= base_timestamp
        head = b"\x00" + (get(ts) or encode_varint(ts)) + (get(delta) or encode_varint(delta))
        if key is None:
            head += _NULL
        else:
            head += (get(len(key)) or encode_varint(len(key))) + key
        if value is None:
            head += _NULL
            size = len(head) + 1
            add((get(size) or encode_varint(size), head, _ZERO))
        else:
            n = len(value)
            n_bytes = get(n) or encode_varint(n)
            size = len(head) + len(n_bytes) + n + 1
            add((get(size) or encode_varint(size), head, n_bytes, value, _ZERO))
    return b"".join(parts)


def _encode_headers(headers) -> bytes:
    parts = [encode_varint(len(headers))]
    for name, value in headers:
        parts.append(_sized(name.encode()))
        parts.append(_sized(value))
    return b"".join(parts)


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    compression: Compression = Compression.NONE,
    is_transactional: bool = False,
    last_offset_delta: int | None = None,
) -> bytes:
    """One batch of `records` (Records, or plain tuples in Record's field order). Records
    without an offset are numbered from `base_offset` by position; with offsets (a compacted
    batch) gaps are kept, and `last_offset_delta` keeps the original batch's last offset even
    when its last record is gone, as Kafka's cleaner does."""
    if not records:
        raise ValueError("a record batch needs at least one record")
    if compression not in (Compression.NONE, Compression.GZIP):
        raise UnsupportedCompressionTypeError(message=f"Compression {Compression(compression).name} "
                                              "is not supported; use none or gzip")
    stamps = [r[3] for r in records]
    if None in stamps:
        now = int(time.time() * 1000)
        stamps = [now if t is None else t for t in stamps]
    base_timestamp = stamps[0]
    if not any(r[2] or r[4] is not None for r in records):
        body = _encode_plain_records(records, stamps, base_timestamp)
        delta = len(records) - 1
    else:
        body = bytearray()
        delta = -1
        for i, r in enumerate(records):
            r = Record._make(r)
            delta = i if r.offset is None else r.offset - base_offset
            _encode_record(body, r, delta, stamps[i] - base_timestamp)
    if last_offset_delta is None:
        last_offset_delta = delta
    if compression == Compression.GZIP:
        body = gzip.compress(bytes(body), mtime=0)
    attributes = int(compression)
    if timestamp_type == TimestampType.LOG_APPEND_TIME:
        attributes |= _TIMESTAMP_TYPE_BIT
    if is_transactional:
        attributes |= _TRANSACTIONAL_BIT
    header = bytearray(RECORD_BATCH_OVERHEAD)
    _HEADER.pack_into(
        header, 0, base_offset, RECORD_BATCH_OVERHEAD - LOG_OVERHEAD + len(body),
        partition_leader_epoch, MAGIC, 0, attributes, last_offset_delta, base_timestamp,
        max(stamps), producer_id, producer_epoch, base_sequence, len(records),
    )
    header += body
    struct.pack_into(">I", header, 17, crc32c(memoryview(header)[CRC_START:]))
    return bytes(header)



# code -> the bytes of a record without key and headers up to its value (see RecordBatchBuilder)
_KEYLESS_HEADS: dict[int, bytes] = {}
_KEYLESS_HEADS_MAX = 1 << 16


def _keyless_head(code: int, timestamp_delta: int, offset_delta: int, value_length: int) -> bytes:
    body = (b"\x00" + encode_varint(timestamp_delta) + encode_varint(offset_delta) + _NULL
            + encode_varint(value_length))
    head = encode_varint(len(body) + value_length + 1) + body
    if len(_KEYLESS_HEADS) >= _KEYLESS_HEADS_MAX:
        _KEYLESS_HEADS.clear()      # a bound, for producers whose deltas and lengths all differ
    _KEYLESS_HEADS[code] = head
    return head


class RecordBatchBuilder:
    """One batch's records encoded as they are appended, as Kafka's MemoryRecordsBuilder does:
    what a producer does per record, so that closing the batch only writes the header and the
    CRC. Offsets are numbered by position; the first record's timestamp is the base.

        builder = RecordBatchBuilder()
        builder.append(None, b"v", (), 1000)             # -> 0, the record's offset delta
        builder.append(None, b"w", (), 1001, 16384)      # -> 1, or -1 if 16384 bytes would not hold it
        data = builder.build(producer_id=7, producer_epoch=0, base_sequence=0)

    `size` is the bytes the batch takes so far, header included (what batch.size limits)."""

    __slots__ = ("_parts", "size", "count", "base_timestamp", "max_timestamp")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = RECORD_BATCH_OVERHEAD
        self.count = 0
        self.base_timestamp = self.max_timestamp = NO_TIMESTAMP
        if not _TWO_BYTE:
            _two_byte_varints()

    def append(self, key: bytes | None, value: bytes | None, headers=(), timestamp: int = 0,
               max_size: int | None = None) -> int:
        """Encode one record (headers: (name, value) pairs); returns its offset delta. With
        `max_size`, a record that would take a batch already holding records past that many
        bytes is left out and -1 returned (Kafka's hasRoomFor: the exact size, and the first
        record always fits). Nothing changes when this raises or returns -1."""
        i = self.count
        delta = timestamp - self.base_timestamp if i else 0
        if key is None and value is not None and not headers:
            # The common record: everything before its value depends only on the two deltas
            # and the value's length, and recurs from batch to batch.
            n = len(value)
            if i < 8192 and n < 65536:
                code = (delta * 8192 + i) * 65536 + n
                head = _KEYLESS_HEADS.get(code)
                if head is None:
                    head = _keyless_head(code, delta, i, n)
                size = self.size + len(head) + n + 1
                if max_size is not None and size > max_size and i:
                    return -1
                self._parts += (head, value, _ZERO)
                self.size = size
                self.count = i + 1
                if not i:
                    self.base_timestamp = self.max_timestamp = timestamp
                elif timestamp > self.max_timestamp:
                    self.max_timestamp = timestamp
                return i
        get = _TWO_BYTE.get
        head = b"\x00" + (get(delta) or encode_varint(delta)) + (get(i) or encode_varint(i))
        if key is None:
            head += _NULL
        else:
            head += (get(len(key)) or encode_varint(len(key))) + key
        if value is None:
            head += _NULL
            value = b""
        else:
            head += get(len(value)) or encode_varint(len(value))
        tail = _encode_headers(headers) if headers else _ZERO
        length = len(head) + len(value) + len(tail)
        prefix = get(length) or encode_varint(length)
        size = self.size + len(prefix) + length
        if max_size is not None and size > max_size and i:
            return -1
        self._parts += (prefix, head, value, tail)
        self.size = size
        self.count = i + 1
        if not i:
            self.base_timestamp = self.max_timestamp = timestamp
        elif timestamp > self.max_timestamp:
            self.max_timestamp = timestamp
        return i

    def build(self, *, base_offset: int = 0, producer_id: int = NO_PRODUCER_ID,
              producer_epoch: int = NO_PRODUCER_EPOCH, base_sequence: int = NO_SEQUENCE,
              partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH) -> bytes:
        """The whole batch (uncompressed, CreateTime) with the records appended so far."""
        if not self.count:
            raise ValueError("a record batch needs at least one record")
        header = bytearray(RECORD_BATCH_OVERHEAD)
        _HEADER.pack_into(
            header, 0, base_offset, self.size - LOG_OVERHEAD, partition_leader_epoch, MAGIC, 0, 0,
            self.count - 1, self.base_timestamp, self.max_timestamp, producer_id, producer_epoch,
            base_sequence, self.count,
        )
        # The CRC runs on from the header's covered part into the records, so the records are
        # copied once more (into the result) rather than twice.
        body = b"".join(self._parts)
        struct.pack_into(">I", header, 17, crc32c(body, crc32c(memoryview(header)[CRC_START:])))
        return bytes(header) + body


# -- decoding -----------------------------------------------------------------------------------


_INFLATE_CHUNK = 1 << 16   # output per inflate step: what a check that only counts holds at once


def _too_large(max_bytes: int, where: str) -> RecordTooLargeError:
    return RecordTooLargeError(message=(
        f"The record batch{where} is more than {max_bytes} bytes once decompressed, which exceeds "
        f"the maximum configured value of max.message.bytes ({max_bytes})."))


def _gunzip(payload: bytes, limit: int | None, *, keep: bool = True, where: str = "",
            batch_limit: int = 0) -> tuple[bytes, int]:
    """(the inflated bytes, or b"" unless `keep`; their count) of a gzip stream (members back to
    back, zero padding after them ignored, as gzip.decompress does). With `limit`, inflating
    stops as soon as more than `limit` bytes came out: RecordTooLargeError, quoting the
    `batch_limit` (the whole batch's) the limit comes from."""
    out = bytearray()
    total = 0
    data = payload
    try:
        while data:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = data
            while not d.eof:
                room = _INFLATE_CHUNK if limit is None else min(_INFLATE_CHUNK, limit + 1 - total)
                chunk = d.decompress(pending, room)
                total += len(chunk)
                if limit is not None and total > limit:
                    raise _too_large(batch_limit or limit, where)
                if keep:
                    out += chunk
                if not chunk and d.unconsumed_tail == pending and not d.eof:
                    raise _corrupt("Record batch's gzip stream is corrupt: Compressed file ended "
                                   "before the end-of-stream marker was reached")
                pending = d.unconsumed_tail
            data = d.unused_data.lstrip(b"\0")
    except zlib.error as exc:
        raise _corrupt(f"Record batch's gzip stream is corrupt: {exc}") from None
    return bytes(out), total


def _records_bytes(data, h: BatchHeader, max_bytes: int | None = None, where: str = ""):
    """The records of the batch, inflated; with `max_bytes`, a batch larger than that once
    decompressed (header included) is refused without inflating more than that."""
    compression = h.compression
    if compression == Compression.NONE:
        return memoryview(data)[RECORD_BATCH_OVERHEAD : h.size]
    if compression == Compression.GZIP:
        limit = None if max_bytes is None else max(max_bytes - RECORD_BATCH_OVERHEAD, 0)
        return _gunzip(bytes(memoryview(data)[RECORD_BATCH_OVERHEAD : h.size]), limit, where=where,
                       batch_limit=max_bytes)[0]
    name = Compression(compression).name if compression in Compression._value2member_map_ else compression
    raise UnsupportedCompressionTypeError(
        message=f"The requesting client does not support the compression type of given "
                f"partition. (batch compressed with {name}; only none and gzip are supported)")


def check_decompressed(data, max_bytes: int, where: str = "") -> int:
    """The size of one batch once decompressed (header included), counted in steps of 64 KiB
    without keeping them; RecordTooLargeError once it passes `max_bytes` (inflating stops
    there). `where` (" in the append to chat-0") goes into the error's message. CPU-bound for
    up to `max_bytes` of output: a server runs it off its event loop."""
    h = parse_header(data)
    if h.compression == Compression.NONE:
        size = h.size
    elif h.compression == Compression.GZIP:
        limit = max(max_bytes - RECORD_BATCH_OVERHEAD, 0)
        payload = bytes(memoryview(data)[RECORD_BATCH_OVERHEAD : h.size])
        size = RECORD_BATCH_OVERHEAD + _gunzip(payload, limit, keep=False, where=where, batch_limit=max_bytes)[1]
    else:
        _records_bytes(data, h)          # refused: not a compression this codec knows
    if size > max_bytes:
        raise _too_large(max_bytes, where)
    return size


def _varint_at(buf: bytes, pos: int, max_bytes: int = 5) -> tuple[int, int]:
    try:
        b = buf[pos]
        if b < 0x80:  # one byte: most deltas, counts and short lengths
            return (b >> 1) ^ -(b & 1), pos + 1
        c = buf[pos + 1]
        if c < 0x80:  # two bytes: lengths up to 8 KiB
            z = (b & 0x7F) | (c << 7)
            return (z >> 1) ^ -(z & 1), pos + 2
    except IndexError:
        pass  # decode_varint says where the bytes ran out
    return decode_varint(buf, pos, max_bytes)


def _read_sized(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    n, pos = _varint_at(buf, pos)
    if n < 0:
        if n != -1:
            raise _corrupt(f"Invalid negative length {n} at position {pos}")
        return None, pos
    if pos + n > end:
        raise _corrupt(f"Length {n} at position {pos} runs past the end of its record")
    return buf[pos : pos + n], pos + n


def decode_records(data, max_bytes: int | None = None) -> list[Record]:
    """Every record of one batch, with absolute offsets and timestamps. Does not check the CRC
    (see `validate_batch`); raises CorruptRecordError when the records do not parse exactly,
    and RecordTooLargeError when the batch is larger than `max_bytes` once decompressed."""
    new = tuple.__new__
    return [new(Record, (r[5], r[6], r[7], r[3], r[2])) for r in decode_rows(data, max_bytes=max_bytes)]


# The consumer's record, field by field: what decode_rows puts in each row.
ROW_FIELDS = ("topic", "partition", "offset", "timestamp", "timestamp_type", "key", "value",
              "headers", "leader_epoch")


def decode_rows(data, row_type: type = tuple, topic: str | None = None, partition: int = -1,
                min_offset: int = -(2**63), max_bytes: int | None = None) -> list:
    """The records of one batch at or above `min_offset`, each as one `row_type` (tuple or a
    subclass of it, such as the consumer's record) of the ROW_FIELDS: `topic` and `partition`
    as given, the rest from the batch. decode_records' checks; one pass, no intermediate
    objects, for readers that want many records fast (the consumer). `max_bytes`: as in
    decode_records."""
    if len(data) < RECORD_BATCH_OVERHEAD:
        raise _corrupt(f"Record batch is corrupt (the size {len(data)} is smaller than the minimum "
                       f"allowed overhead {RECORD_BATCH_OVERHEAD})")
    h = parse_header(data)
    _check_structure(h)
    if h.size > len(data):
        raise _corrupt(f"Record batch length field says {h.size} bytes, but {len(data)} were given")
    buf = bytes(_records_bytes(data, h, max_bytes))
    base_offset, base_timestamp = h.base_offset, h.base_timestamp
    log_append_time = h.attributes & _TIMESTAMP_TYPE_BIT
    ts_type = 1 if log_append_time else 0
    epoch = h.partition_leader_epoch
    zigzag = _ZIGZAG or _zigzag_table()
    new = tuple.__new__
    out = []
    append = out.append
    pos, end = 0, len(buf)
    # Varints of one or two bytes (lengths under 8 KiB, deltas) are read inline through the
    # zig-zag table; anything longer goes through _varint_at, which checks its bounds. A record
    # whose value ends it with no headers (the usual one) needs one check for all that.
    try:
        for _ in range(h.records_count):
            b = buf[pos]
            if b < 0x80:
                length = zigzag[b]
                pos += 1
            else:
                c = buf[pos + 1]
                if c < 0x80:  # two bytes: records up to 8 KiB
                    length = zigzag[(c << 7) | (b & 0x7F)]
                    pos += 2
                else:
                    length, pos = _varint_at(buf, pos)
            stop = pos + length
            if length < _MIN_RECORD_BYTES - 1 or stop > end:
                raise _corrupt(f"Invalid record size {length} at position {pos} of the records")
            b = buf[pos + 1]  # + 1: the unused attributes byte
            if b < 0x80:
                ts_delta = zigzag[b]
                pos += 2
            else:
                ts_delta, pos = _varint_at(buf, pos + 1, 10)
            b = buf[pos]
            if b < 0x80:
                offset_delta = zigzag[b]
                pos += 1
            else:
                c = buf[pos + 1]
                if c < 0x80:  # two bytes: the 64th to the 8192nd record of a batch
                    offset_delta = zigzag[(c << 7) | (b & 0x7F)]
                    pos += 2
                else:
                    offset_delta, pos = _varint_at(buf, pos)
            if buf[pos] == 1:  # -1: no key
                key = None
                pos += 1
            else:
                key, pos = _read_sized(buf, pos, stop)
            b = buf[pos]
            if b < 0x80:
                n = zigzag[b]
                pos += 1
            else:
                c = buf[pos + 1]
                if c < 0x80:  # two bytes: values up to 8 KiB
                    n = zigzag[(c << 7) | (b & 0x7F)]
                    pos += 2
                else:
                    n, pos = _varint_at(buf, pos)
            if n >= 0 and pos + n + 1 == stop and buf[pos + n] == 0:
                value = buf[pos : pos + n]      # then a header count of 0, and the record ends
                headers = ()
            else:
                if n >= 0 and pos + n <= stop:
                    value = buf[pos : pos + n]
                    pos += n
                elif n == -1:
                    value = None
                else:
                    raise _corrupt(f"Invalid length {n} at position {pos} of a record")
                count, pos = _varint_at(buf, pos)
                headers = ()
                if count:
                    headers, pos = _read_headers(buf, pos, stop, count)
                if pos != stop:
                    raise _corrupt(f"Invalid record size: expected to read {length} bytes in record "
                                   f"payload, but instead read {length - (stop - pos)}")
            pos = stop
            offset = base_offset + offset_delta
            if offset >= min_offset:
                append(new(row_type, (topic, partition, offset,
                                      h.max_timestamp if log_append_time else base_timestamp + ts_delta,
                                      ts_type, key, value, headers, epoch)))
    except IndexError:
        raise _corrupt(f"Record ends early at position {pos} of the records") from None
    if pos != end:
        raise _corrupt(f"Found {end - pos} bytes after the last of {h.records_count} records "
                       "in the record batch")
    return out


_ZIGZAG: list[int] = []  # the value of every varint of one or two bytes, by its 14 bits


def _zigzag_table() -> list[int]:
    """Built on first use (about 2 ms), which one-shot commands that decode nothing skip."""
    if not _ZIGZAG:
        _ZIGZAG.extend((z >> 1) ^ -(z & 1) for z in range(1 << 14))
    return _ZIGZAG


def _read_headers(buf: bytes, pos: int, stop: int, count: int):
    if count < 0:
        raise _corrupt(f"Invalid negative header count {count}")
    headers = []
    for _ in range(count):
        name, pos = _read_sized(buf, pos, stop)
        if name is None:
            raise _corrupt("Invalid negative header key size")
        value, pos = _read_sized(buf, pos, stop)
        headers.append((name.decode("utf-8", "replace"), value))
    return tuple(headers), pos


def has_null_key(data, max_bytes: int | None = None) -> bool:
    """True when a record of the batch has no key; walks the records without building them
    (the check a compacted topic needs on every append). `max_bytes`: as in decode_records."""
    h = parse_header(data)
    buf = _records_bytes(data, h, max_bytes)
    pos = 0
    for _ in range(h.records_count):
        length, pos = decode_varint(buf, pos, 5)
        stop = pos + length
        _, pos = decode_varint(buf, pos + 1, 10)
        _, pos = decode_varint(buf, pos, 5)
        key_length, pos = decode_varint(buf, pos, 5)
        if key_length < 0:
            return True
        pos = stop
    return False
