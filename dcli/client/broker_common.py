"""What the producer, the consumer and the admin client share: the channel to a broker, the
topic metadata cache, and Kafka error codes turned back into the project's error classes."""
from __future__ import annotations

import threading

import grpc

from dcli.client.session import CHANNEL_OPTIONS, parse_servers
from dcli.v1 import broker_pb2 as bpb
from dcli.v1 import broker_pb2_grpc as bpb_grpc
from dcli.wire import errors

UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5


def _broker_errors() -> dict[int, type[errors.BrokerError]]:
    found: dict[int, type[errors.BrokerError]] = {}
    stack = [errors.BrokerError]
    while stack:
        cls = stack.pop()
        if cls.kafka_code > 0:
            found.setdefault(cls.kafka_code, cls)
        stack.extend(cls.__subclasses__())
    return found


_BY_CODE = _broker_errors()


class KafkaError(errors.BrokerError):
    """A broker error code the client has no class of its own for."""


def raise_for(code: int, message: str) -> errors.BrokerError:
    """The exception for Kafka error `code` (the caller raises it or sets it on a future)."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls("", message or None)
    err = KafkaError("", message or f"Kafka error code {code}")
    err.kafka_code = code
    return err


class BrokerChannel:
    """A gRPC channel to the first reachable bootstrap server, and the metadata cache."""

    def __init__(self, bootstrap_servers: str | list[str]):
        self.servers = parse_servers(bootstrap_servers)
        self.channel = grpc.insecure_channel(self.servers[0], options=CHANNEL_OPTIONS)
        self.stub = bpb_grpc.BrokerStub(self.channel)
        self._partitions: dict[str, int] = {}
        self._lock = threading.Lock()

    def metadata(self, topics: list[str] | None = None, auto_create: bool = False,
                 timeout: float = 30.0) -> bpb.MetadataResponse:
        req = bpb.MetadataRequest(topics=topics or [], all_topics=topics is None,
                                  allow_auto_topic_creation=auto_create)
        try:
            return self.stub.Metadata(req, timeout=timeout)
        except grpc.RpcError as e:
            raise rpc_error(e, self.servers[0]) from None

    def partition_count(self, topic: str) -> int:
        """How many partitions `topic` has (asks once, creating it if the broker auto-creates)."""
        with self._lock:
            n = self._partitions.get(topic)
        if n is not None:
            return n
        md = self.metadata([topic], auto_create=True)
        t = next((t for t in md.topics if t.name == topic), None)
        if t is None or t.error_code:
            code = t.error_code if t is not None else UNKNOWN_TOPIC_OR_PARTITION
            raise raise_for(code, (t.error_message if t is not None else "")
                            or f"Topic {topic} not present in metadata.")
        with self._lock:
            self._partitions[topic] = len(t.partitions)
        return len(t.partitions)

    def forget(self, topic: str) -> None:
        with self._lock:
            self._partitions.pop(topic, None)

    def close(self) -> None:
        self.channel.close()


def rpc_error(e: grpc.RpcError, server: str) -> errors.DcliError:
    """A failed call as one of the project's errors (one line for the CLI)."""
    code = e.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return errors.UnavailableError(server, f"Cannot connect to {server}: {e.details() or code.name}")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return errors.UnimplementedError("", f"The server at {server} does not offer this: {e.details()}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return errors.BadArgumentsError("", e.details() or "invalid request")
    return errors.SystemError_("", f"{code.name}: {e.details()}")
