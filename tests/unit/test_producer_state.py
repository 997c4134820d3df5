"""Idempotent-producer bookkeeping: duplicates, gaps, epochs, wrap-around, snapshots."""

from __future__ import annotations

import pytest

from dcli.wire.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from dcli.wire.records import INT32_MAX, Record, build_batch, validate_batch
from dcli_server.broker.producer_state import (
    BATCHES_TO_RETAIN,
    CorruptProducerSnapshotError,
    Duplicate,
    ProducerStateTable,
)

PID = 42


def appended(table: ProducerStateTable, epoch: int, first: int, last: int, base: int) -> None:
    """check() then record(), as the broker does for an accepted batch."""
    assert table.check(PID, epoch, first, last, offset=base) is None
    table.record(PID, epoch, first, last, base, base + last - first)


def test_unknown_producer_may_start_anywhere():
    table = ProducerStateTable("chat-0")
    assert table.check(PID, 0, 0, 4) is None
    assert table.check(PID, 0, 17, 20) is None  # its state may have gone with retention


def test_non_idempotent_batches_are_not_tracked():
    table = ProducerStateTable("chat-0")
    table.record(-1, -1, -1, -1, 0, 5)
    assert len(table) == 0 and table.check(-1, -1, -1, -1) is None


def test_retry_of_a_recent_batch_is_a_duplicate_with_its_original_offsets():
    table = ProducerStateTable("chat-0")
    appended(table, 0, 0, 4, base=100)
    appended(table, 0, 5, 9, base=200)
    assert table.check(PID, 0, 0, 4) == Duplicate(100, 104)
    assert table.check(PID, 0, 5, 9) == Duplicate(200, 204)


def test_only_the_last_five_batches_are_remembered():
    table = ProducerStateTable("chat-0")
    for i in range(BATCHES_TO_RETAIN + 1):
        appended(table, 0, i, i, base=i)
    assert table.check(PID, 0, 1, 1) == Duplicate(1, 1)
    with pytest.raises(OutOfOrderSequenceError):
        table.check(PID, 0, 0, 0)  # forgotten: no longer told from a gap


def test_gap_is_out_of_order_with_kafkas_message():
    table = ProducerStateTable("chat-0")
    appended(table, 0, 0, 3, base=0)
    with pytest.raises(OutOfOrderSequenceError) as info:
        table.check(PID, 0, 5, 6, offset=17)
    assert str(info.value) == (
        "Out of order sequence number for producer 42 at offset 17 in partition chat-0: "
        "5 (incoming seq. number), 3 (current end sequence number)")
    assert info.value.kafka_code == 45


def test_overlapping_but_different_range_is_out_of_order():
    table = ProducerStateTable("chat-0")
    appended(table, 0, 0, 3, base=0)
    with pytest.raises(OutOfOrderSequenceError):
        table.check(PID, 0, 2, 5)


def test_old_epoch_is_fenced():
    table = ProducerStateTable("chat-0")
    appended(table, 3, 0, 0, base=0)
    with pytest.raises(InvalidProducerEpochError) as info:
        table.check(PID, 2, 1, 1, offset=9)
    assert str(info.value) == ("Epoch of producer 42 at offset 9 in chat-0 is 2, which is "
                               "smaller than the last seen epoch 3")
    assert info.value.kafka_code == 47


def test_new_epoch_must_start_at_zero_and_forgets_old_batches():
    table = ProducerStateTable("chat-0")
    appended(table, 0, 0, 9, base=0)
    with pytest.raises(OutOfOrderSequenceError, match="Invalid sequence number for new epoch"):
        table.check(PID, 1, 10, 12)
    appended(table, 1, 0, 2, base=10)
    assert table.entry(PID).epoch == 1 and len(table.entry(PID).batches) == 1
    with pytest.raises(InvalidProducerEpochError):
        table.check(PID, 0, 0, 9)  # the old epoch's retry is fenced, not a duplicate


def test_sequence_wraps_at_int32_max():
    table = ProducerStateTable("chat-0")
    appended(table, 0, INT32_MAX - 1, INT32_MAX, base=0)
    assert table.check(PID, 0, 0, 3) is None
    with pytest.raises(OutOfOrderSequenceError):
        table.check(PID, 0, 1, 3)


def test_snapshot_round_trip():
    table = ProducerStateTable("chat-0")
    for i in range(7):
        appended(table, 0, i * 2, i * 2 + 1, base=i * 10)
    table.record(7, 3, 0, 0, 500, 500)
    copy = ProducerStateTable.from_bytes(table.to_bytes(), "chat-0")
    assert len(copy) == 2
    assert copy.entry(PID) == table.entry(PID) and copy.entry(7) == table.entry(7)
    assert copy.check(PID, 0, 12, 13) == Duplicate(60, 61)
    assert ProducerStateTable.from_bytes(ProducerStateTable().to_bytes()).entry(PID) is None


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend", "marker"])
def test_damaged_snapshot_is_refused(damage):
    table = ProducerStateTable()
    appended(table, 0, 0, 0, base=0)
    data = bytearray(table.to_bytes())
    if damage == "flip":
        data[-3] ^= 1
    elif damage == "truncate":
        del data[-1]
    elif damage == "extend":
        data += b"\x00"
    else:
        data[0:4] = b"XXXX"
    with pytest.raises(CorruptProducerSnapshotError):
        ProducerStateTable.from_bytes(bytes(data))


def test_rebuild_from_batch_headers():
    headers = []
    for i, (epoch, seq) in enumerate([(0, 0), (0, 3), (1, 0)]):
        batch = build_batch([Record(b"k", b"v", (), 1)] * 3, base_offset=i * 3, producer_id=PID,
                            producer_epoch=epoch, base_sequence=seq)
        headers.append(validate_batch(batch))
    headers.append(validate_batch(build_batch([Record(b"k", b"v", (), 1)], base_offset=9)))
    table = ProducerStateTable("chat-0")
    table.rebuild_from(headers)
    assert len(table) == 1
    assert table.entry(PID).epoch == 1
    assert table.check(PID, 1, 0, 2) == Duplicate(6, 8)
    assert table.check(PID, 1, 3, 5) is None
