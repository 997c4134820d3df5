"""The consumer's CRC check (Kafka's check.crcs): a batch damaged between the producer and the
consumer is refused with Kafka's message, naming the partition and the offset to seek past."""
from __future__ import annotations

import pytest

from dcli.client.consumer import _verify
from dcli.wire.errors import CorruptRecordError
from dcli.wire.records import Record, build_batch


def test_an_intact_batch_passes_and_a_flipped_bit_is_refused():
    batch = build_batch([Record(key=b"k", value=b"intact-value")], base_offset=7)
    _verify(memoryview(batch), ("chat", 0), 7)
    damaged = bytearray(batch)
    damaged[batch.index(b"intact-value")] ^= 0x20
    with pytest.raises(CorruptRecordError) as raised:
        _verify(memoryview(bytes(damaged)), ("chat", 0), 7)
    message = str(raised.value)
    assert message.startswith("Record batch for partition chat-0 at offset 7 is invalid, cause: Record is corrupt")
    assert "seek past the record" in message
