"""The record batch v2 codec: bytes a Kafka broker wrote, round trips, damage, header rewrites."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcli.wire.errors import CorruptRecordError, DcliError, UnsupportedCompressionTypeError
from dcli.wire.records import (
    INT32_MAX,
    RECORD_BATCH_OVERHEAD,
    Compression,
    Record,
    RecordBatchBuilder,
    TimestampType,
    build_batch,
    crc32c,
    decode_records,
    decode_varint,
    encode_varint,
    has_null_key,
    increment_sequence,
    iter_batches,
    validate_batch,
    with_base_offset,
    with_leader_epoch,
)

# One batch as a Kafka 0.11 broker stored it (value "123", null key, leader epoch 1); the same
# bytes are in kafka-python's test suite as "real live data".
KAFKA_BATCH = bytes.fromhex(
    "00000000000000000000003b00000001020318a2700000000000000000015dff7b063c0000015dff7b063c"
    "ffffffffffffffffffffffffffff0000000112000000010631323300"
)


def test_crc32c_is_castagnoli_not_ieee():
    assert crc32c(b"123456789") == 0xE3069283


def test_a_batch_kafka_wrote_validates_and_decodes():
    h = validate_batch(KAFKA_BATCH)
    assert (h.base_offset, h.partition_leader_epoch, h.records_count) == (0, 1, 1)
    assert h.size == len(KAFKA_BATCH) and h.next_offset == 1
    assert decode_records(KAFKA_BATCH) == [Record(None, b"123", (), 1503229838908, 0)]


def test_building_the_same_record_gives_kafkas_bytes():
    record = Record(value=b"123", timestamp=1503229838908)
    assert build_batch([record], partition_leader_epoch=1) == KAFKA_BATCH


def test_round_trip_with_keys_values_headers_and_nulls():
    records = [
        Record(b"k1", b"v1", (("h1", b"x"), ("h2", None)), 1000),
        Record(None, b"no key", (), 1001),
        Record(b"tombstone", None, (), 999),
        Record(b"", b"", (("", b""),), 2**40),
    ]
    batch = build_batch(records, base_offset=42, producer_id=7, producer_epoch=3,
                        base_sequence=11, partition_leader_epoch=5)
    h = validate_batch(batch)
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence) == (7, 3, 11, 14)
    assert (h.base_timestamp, h.max_timestamp) == (1000, 2**40)
    assert (h.last_offset, h.partition_leader_epoch) == (45, 5)
    assert decode_records(batch) == [r._replace(offset=42 + i) for i, r in enumerate(records)]


def test_gzip_round_trip():
    records = [Record(b"k%d" % i, b"value" * i, (), 5000 + i) for i in range(20)]
    batch = build_batch(records, compression=Compression.GZIP)
    h = validate_batch(batch)
    assert h.compression == Compression.GZIP
    assert decode_records(batch) == [r._replace(offset=i) for i, r in enumerate(records)]


def test_other_compressions_are_refused_with_kafkas_words():
    batch = bytearray(build_batch([Record(b"k", b"v", (), 1)]))
    struct.pack_into(">h", batch, 21, int(Compression.SNAPPY))
    struct.pack_into(">I", batch, 17, crc32c(bytes(batch[21:])))
    validate_batch(bytes(batch))  # the header and CRC are fine; the records cannot be read
    with pytest.raises(UnsupportedCompressionTypeError, match="does not support the compression"):
        decode_records(bytes(batch))
    with pytest.raises(UnsupportedCompressionTypeError):
        build_batch([Record(b"k", b"v")], compression=Compression.ZSTD)


def test_log_append_time_gives_every_record_the_batch_time():
    batch = build_batch([Record(b"a", b"1", (), 10), Record(b"b", b"2", (), 30)],
                        timestamp_type=TimestampType.LOG_APPEND_TIME)
    assert validate_batch(batch).timestamp_type == TimestampType.LOG_APPEND_TIME
    assert [r.timestamp for r in decode_records(batch)] == [30, 30]


def test_attribute_bits():
    h = validate_batch(build_batch([Record(b"k", b"v", (), 1)], is_transactional=True))
    assert h.is_transactional and not h.is_control and not h.has_delete_horizon
    assert h.compression == Compression.NONE


@pytest.mark.parametrize("position", range(0, len(KAFKA_BATCH)))
def test_any_flipped_byte_is_caught(position):
    """Every byte under the CRC fails the CRC; those before it break a header check or are
    the fields the broker rewrites (base offset, leader epoch), which the CRC leaves out."""
    damaged = bytearray(KAFKA_BATCH)
    damaged[position] ^= 0x41
    if position < 8 or 12 <= position < 16:
        validate_batch(bytes(damaged))
        return
    with pytest.raises(CorruptRecordError) as info:
        validate_batch(bytes(damaged))
    assert isinstance(info.value, DcliError) and info.value.kafka_code == 2
    if position >= 21:
        assert "Record is corrupt (stored crc = " in str(info.value)


def test_wrong_lengths_and_magic_are_corrupt():
    with pytest.raises(CorruptRecordError, match="smaller than the minimum allowed overhead 61"):
        validate_batch(KAFKA_BATCH[:60])
    with pytest.raises(CorruptRecordError, match="length field"):
        validate_batch(KAFKA_BATCH + b"\x00")
    old = bytearray(KAFKA_BATCH)
    old[16] = 1
    with pytest.raises(CorruptRecordError, match="magic 1"):
        validate_batch(bytes(old))


def test_record_count_that_cannot_fit_is_corrupt():
    batch = bytearray(build_batch([Record(b"k", b"v", (), 1)]))
    struct.pack_into(">i", batch, 57, 2)  # two records in the space of one, lastOffsetDelta 0
    struct.pack_into(">I", batch, 17, crc32c(bytes(batch[21:])))
    with pytest.raises(CorruptRecordError, match="2 records"):
        validate_batch(bytes(batch))


def test_rewriting_base_offset_and_leader_epoch_keeps_the_crc():
    moved = with_leader_epoch(with_base_offset(KAFKA_BATCH, 1234567), 9)
    h = validate_batch(moved)
    assert (h.base_offset, h.partition_leader_epoch, h.crc) == (1234567, 9, validate_batch(KAFKA_BATCH).crc)
    assert decode_records(moved)[0].offset == 1234567


def test_compacted_batch_keeps_its_gaps_and_last_offset():
    kept = [Record(b"a", b"1", (), 5, 100), Record(b"c", b"3", (), 7, 103)]
    batch = build_batch(kept, base_offset=100, last_offset_delta=4)
    h = validate_batch(batch)
    assert (h.records_count, h.last_offset, h.next_offset) == (2, 104, 105)
    assert [r.offset for r in decode_records(batch)] == [100, 103]


def test_iter_batches_stops_at_a_truncated_tail():
    batches = [build_batch([Record(b"k", b"v" * i, (), i)], base_offset=i) for i in range(3)]
    stream = b"".join(batches)
    for cut in range(len(batches[2])):
        got = list(iter_batches(stream[: len(stream) - len(batches[2]) + cut]))
        assert [bytes(b) for _, b in got] == batches[:2]
    got = list(iter_batches(memoryview(stream)))
    assert [h.base_offset for h, _ in got] == [0, 1, 2]
    assert isinstance(got[0][1], memoryview)


def test_iter_batches_refuses_a_header_that_cannot_be_a_batch():
    with pytest.raises(CorruptRecordError):
        list(iter_batches(b"\x00" * 100))


def test_garbled_records_are_corrupt_not_a_crash():
    batch = bytearray(build_batch([Record(b"key", b"value", (("h", b"v"),), 1)]))
    batch[RECORD_BATCH_OVERHEAD] = 0x7F  # record length varint: far too long
    with pytest.raises(CorruptRecordError):
        decode_records(bytes(batch))


def test_has_null_key():
    assert has_null_key(build_batch([Record(b"k", b"v", (), 1), Record(None, b"v", (), 1)]))
    assert not has_null_key(build_batch([Record(b"k", None, (), 1), Record(b"", b"v", (), 1)]))


def test_sequences_wrap_at_int32_max():
    assert increment_sequence(5, 3) == 8
    assert increment_sequence(INT32_MAX, 1) == 0
    assert increment_sequence(INT32_MAX - 1, 3) == 1
    assert increment_sequence(-1, 3) == -1


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_varint_round_trip(value):
    encoded = encode_varint(value)
    assert decode_varint(encoded + b"\xff", 0) == (value, len(encoded))


def test_varint_known_encodings():
    # protobuf sint: 0 -> 00, -1 -> 01, 1 -> 02, 63 -> 7e, -64 -> 7f, 64 -> 8001
    assert [encode_varint(v).hex() for v in (0, -1, 1, 63, -64, 64)] == [
        "00", "01", "02", "7e", "7f", "8001"]
    with pytest.raises(CorruptRecordError, match="too long"):
        decode_varint(b"\xff" * 6, 0, 5)


headers = st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=8))),
                   max_size=3).map(tuple)
records = st.builds(Record, st.one_of(st.none(), st.binary(max_size=40)),
                    st.one_of(st.none(), st.binary(max_size=300)), headers,
                    st.integers(min_value=0, max_value=2**45), offset=st.none())


@given(st.lists(records, min_size=1, max_size=20), st.integers(0, 2**40),
       st.sampled_from([Compression.NONE, Compression.GZIP]))
def test_batch_round_trip(recs, base_offset, compression):
    batch = build_batch(recs, base_offset=base_offset, compression=compression)
    h = validate_batch(batch)
    assert h.records_count == len(recs) and h.last_offset == base_offset + len(recs) - 1
    assert h.max_timestamp == max(r.timestamp for r in recs)
    assert decode_records(batch) == [r._replace(offset=base_offset + i) for i, r in enumerate(recs)]


@given(st.lists(records, min_size=1, max_size=20), st.integers(-1, 2**40), st.integers(-1, 2**15 - 1),
       st.integers(-1, INT32_MAX))
def test_the_builder_writes_what_build_batch_writes(recs, producer_id, epoch, sequence):
    builder = RecordBatchBuilder()
    assert [builder.append(*r[:4]) for r in recs] == list(range(len(recs)))
    batch = builder.build(producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence)
    assert builder.size == len(batch)
    assert batch == build_batch(recs, producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence)


def test_the_builder_encodes_long_varints_and_refuses_an_empty_batch():
    builder = RecordBatchBuilder()
    with pytest.raises(ValueError):
        builder.build()
    recs = [Record(b"k" * 9000, b"v" * 70000, (), 10**12 + i * 100_000) for i in range(3)]
    recs += [Record(None, b"", (), 10**12 - 10**9)]
    for r in recs:
        builder.append(*r[:4])
    assert decode_records(builder.build(base_offset=7)) == [r._replace(offset=7 + i) for i, r in enumerate(recs)]


@given(st.lists(records, min_size=1, max_size=5), st.data())
def test_truncated_batches_never_validate(recs, data):
    batch = build_batch(recs)
    cut = data.draw(st.integers(0, len(batch) - 1))
    with pytest.raises(CorruptRecordError):
        validate_batch(batch[:cut])
    assert list(iter_batches(batch[:cut])) == []


@given(st.lists(records, min_size=1, max_size=20), st.integers(61, 600))
def test_the_builder_stops_at_max_size_and_changes_nothing_when_it_does(recs, max_size):
    builder = RecordBatchBuilder()
    kept = []
    for r in recs:
        before = (builder.size, builder.count, builder.base_timestamp, builder.max_timestamp)
        index = builder.append(*r[:4], max_size)
        if index < 0:
            assert builder.count and (builder.size, builder.count, builder.base_timestamp, builder.max_timestamp) == before
        else:
            kept.append(r)
    assert kept[0] == recs[0]                            # the first record always fits
    assert builder.size <= max_size or len(kept) == 1
    assert builder.build() == build_batch(kept)
