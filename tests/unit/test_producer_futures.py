"""FutureRecordMetadata: one record's view of its batch's outcome, as concurrent.futures.Future."""

from __future__ import annotations

import threading

import pytest

from dcli.client.producer import FutureRecordMetadata, RecordMetadata, _Batch
from dcli.wire.errors import NotLeaderOrFollowerError


def _batch_of(n: int) -> tuple[_Batch, list[FutureRecordMetadata]]:
    batch = _Batch("chat", 2, 0.0, 0)
    return batch, [FutureRecordMetadata(batch, batch.append(None, b"v", (), 1000 + i), 1000 + i) for i in range(n)]


def test_results_come_from_the_batchs_outcome():
    batch, futures = _batch_of(3)
    seen = []
    futures[1].add_done_callback(seen.append)
    with pytest.raises(TimeoutError):
        futures[0].result(timeout=0)
    assert not futures[0].done() and seen == []
    batch.settle((40, -1), None)
    assert [f.result() for f in futures] == [RecordMetadata("chat", 2, 40 + i, 1000 + i) for i in range(3)]
    assert seen == [futures[1]] and futures[2].done() and futures[2].exception() is None
    futures[0].add_done_callback(seen.append)           # already settled: runs at once
    assert seen == [futures[1], futures[0]]


def test_a_failed_batch_fails_every_record_and_wakes_a_waiting_thread():
    batch, futures = _batch_of(2)
    got = []
    waiter = threading.Thread(target=lambda: got.append(futures[1].exception()))
    waiter.start()
    error = NotLeaderOrFollowerError()
    batch.settle((-1, -1), error)
    waiter.join(10)
    assert got == [error] and futures[0].exception(timeout=0) is error
    with pytest.raises(NotLeaderOrFollowerError):
        futures[0].result()
