"""The producer's retry decision for a failed batch: the error says whether to retry;
`retries` counts only sends that may have reached the broker (a dead leader's refused
connection is not one, as in Kafka); delivery.timeout.ms ends every wait with Kafka's timeout;
the backoff doubles up to retry.backoff.max.ms. No broker is involved: nothing is sent."""
from __future__ import annotations

import pytest

from dcli.client.producer import RETRY_JITTER, Producer, _Batch
from dcli.wire import errors


@pytest.fixture
def producer():
    # Nothing is queued, so the producer never connects to this address.
    p = Producer("127.0.0.1:1", retries=2, retry_backoff_ms=100, retry_backoff_max_ms=1000,
                 delivery_timeout_ms=120000)
    yield p
    p.close()


def failed(producer: Producer, b: _Batch, err: errors.DcliError, sent: bool, now: float = 10.0):
    """What the batch fails with (None: sent again), and the batch as the retry leaves it."""
    final = producer._final_error(b, err, sent, now)
    if final is None:
        b.attempts += 1
        b.unsent += not sent
    return final


def batch() -> _Batch:
    b = _Batch("chat", 0, 0.0, 0)
    b.append(None, b"v", (), 1000)
    return b


def test_refused_connections_never_use_up_the_retries(producer):
    b = batch()
    unreachable = errors.BrokerUnreachableError("127.0.0.1:1", "Connection refused")
    assert all(failed(producer, b, unreachable, sent=False) is None for _ in range(50))
    network = errors.NetworkError("127.0.0.1:1", "Socket closed")
    assert failed(producer, b, network, sent=True) is None
    assert failed(producer, b, network, sent=True) is None
    assert failed(producer, b, network, sent=True) is network        # retries=2: the third send fails


def test_the_error_decides(producer):
    assert failed(producer, batch(), errors.NotLeaderOrFollowerError(), sent=True) is None
    assert failed(producer, batch(), errors.NotEnoughReplicasError(), sent=True) is None
    too_large = errors.RecordTooLargeError()
    assert failed(producer, batch(), too_large, sent=True) is too_large
    unknown = errors.BrokerError()                                    # Kafka's UNKNOWN_SERVER_ERROR
    assert failed(producer, batch(), unknown, sent=True) is unknown


def test_the_delivery_timeout_ends_the_wait_for_a_dead_leader(producer):
    b = batch()
    unreachable = errors.BrokerUnreachableError("127.0.0.1:1", "Connection refused")
    assert failed(producer, b, unreachable, sent=False, now=119.9) is None
    final = failed(producer, b, unreachable, sent=False, now=120.0)
    assert isinstance(final, errors.OperationTimeoutError) and final.__cause__ is unreachable
    assert str(final) == "Expiring 1 record(s) for chat-0: 120000 ms has passed since batch creation"


def test_the_backoff_doubles_up_to_its_maximum(producer):
    for failures, base in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (40, 1.0)]:
        waits = [producer._backoff(failures) for _ in range(50)]
        assert all(base * (1 - RETRY_JITTER) <= w <= base * (1 + RETRY_JITTER) for w in waits), (failures, waits)
