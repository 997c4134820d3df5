"""Broker errors carry their retry decision (`retriable`, `invalid_metadata`) as Kafka's classes
do, and a broker call that failed without an answer becomes the error that says whether it
may have been applied: checked against a real gRPC server and a port nobody listens on."""
from __future__ import annotations

import socket
import threading
from concurrent import futures

import grpc
import pytest

from dcli.client.broker_common import KafkaError, call_failure, error_class, raise_for
from dcli.wire import errors

# Kafka's RetriableException and InvalidMetadataException subclasses among the codes a Produce,
# Fetch or ListOffsets answer carries (clients `protocol/Errors.java`).
KAFKA = {  # code: (retriable, invalid metadata)
    -1: (False, False),     # UNKNOWN_SERVER_ERROR
    1: (False, False),      # OFFSET_OUT_OF_RANGE
    2: (True, False),       # CORRUPT_MESSAGE
    3: (True, True),        # UNKNOWN_TOPIC_OR_PARTITION
    5: (True, True),        # LEADER_NOT_AVAILABLE
    6: (True, True),        # NOT_LEADER_OR_FOLLOWER
    7: (True, False),       # REQUEST_TIMED_OUT
    10: (False, False),     # MESSAGE_TOO_LARGE
    13: (True, True),       # NETWORK_EXCEPTION
    14: (True, False),      # COORDINATOR_LOAD_IN_PROGRESS
    19: (True, False),      # NOT_ENOUGH_REPLICAS
    20: (True, False),      # NOT_ENOUGH_REPLICAS_AFTER_APPEND
    45: (False, False),     # OUT_OF_ORDER_SEQUENCE_NUMBER
    47: (False, False),     # INVALID_PRODUCER_EPOCH
    56: (True, True),       # KAFKA_STORAGE_ERROR
    74: (True, True),       # FENCED_LEADER_EPOCH
    75: (True, True),       # UNKNOWN_LEADER_EPOCH
    87: (False, False),     # INVALID_RECORD
    999: (False, False),    # a code the client does not know
}


@pytest.mark.parametrize("code", sorted(KAFKA))
def test_each_code_says_whether_to_retry_and_whether_the_leader_moved(code):
    err = raise_for(code, "")
    assert (err.retriable, err.invalid_metadata) == KAFKA[code]
    assert error_class(code) is type(err)
    assert err.kafka_code == code


def test_an_unknown_code_is_a_kafka_error_with_its_number():
    err = raise_for(999, "")
    assert isinstance(err, KafkaError) and str(err) == "Kafka error code 999"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def slow_server():
    """A gRPC server whose one method answers once `release` is set; its address."""
    release = threading.Event()
    entered = threading.Event()

    def slow(request, context):
        entered.set()
        release.wait(30)
        return b""

    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "t.Slow", {"Call": grpc.unary_unary_rpc_method_handler(slow)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield server, f"127.0.0.1:{port}", entered
    release.set()
    server.stop(0)


def failure(address: str, method: str = "/t.Slow/Call", timeout: float = 10.0, during=None) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method).future(b"", timeout=timeout)
        if during is not None:
            during()
        with pytest.raises(grpc.RpcError) as caught:
            call.result()
    return caught.value


def test_no_connection_means_the_request_never_left():
    address = f"127.0.0.1:{free_port()}"
    err = call_failure(failure(address), address)
    assert isinstance(err, errors.BrokerUnreachableError)
    assert err.retriable and err.invalid_metadata and address in str(err)


def test_a_connection_that_breaks_mid_call_may_have_delivered_it(slow_server):
    server, address, entered = slow_server

    def stop_once_inside():
        assert entered.wait(10)
        server.stop(0)
    err = call_failure(failure(address, during=stop_once_inside), address)
    assert type(err) is errors.NetworkError
    assert err.retriable and err.invalid_metadata


def test_no_answer_in_time_is_a_request_timeout(slow_server):
    _, address, _ = slow_server
    err = call_failure(failure(address, timeout=0.2), address)
    assert isinstance(err, errors.RequestTimedOutError) and err.retriable


def test_any_other_status_is_not_retried(slow_server):
    _, address, _ = slow_server
    err = call_failure(failure(address, method="/t.Slow/Missing"), address)
    assert isinstance(err, errors.UnimplementedError) and not err.retriable
