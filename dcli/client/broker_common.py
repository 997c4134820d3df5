"""What the producer, the consumer and the admin client share: the way to the brokers
(BrokerChannel: bootstrap, Metadata, a channel per broker, leaders and group coordinators), and
Kafka error codes and failed calls turned back into the project's error classes, which say
whether to retry (`retriable`) and whether to ask for metadata first (`invalid_metadata`)."""
from __future__ import annotations

import logging
import threading
import time

import grpc

from dcli.client.broker_metadata import WILDCARD_HOSTS, ClusterMetadata, Leader, host_of, join_host_port
from dcli.client.rpc import error_from_rpc
from dcli.client.session import CHANNEL_OPTIONS, parse_servers
from dcli.client.tls import open_channel
from dcli.v1 import broker_pb2 as bpb
from dcli.v1 import broker_pb2_grpc as bpb_grpc
from dcli.wire import errors

UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
# COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR: find it again
RETRY_BACKOFF_S = 0.1               # Kafka's retry.backoff.ms
UNKNOWN_TOPIC_WAIT_S = 3.0          # how long a topic no broker knows yet is asked for again
# Kafka's reconnect.backoff.ms / reconnect.backoff.max.ms: a restarted broker is reached again
# within a second (gRPC's own default grows to two minutes)
BROKER_CHANNEL_OPTIONS = CHANNEL_OPTIONS + [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
LOGGER = logging.getLogger("dcli.client.broker")


class KafkaError(errors.BrokerError):
    """A broker error code the client has no class of its own for."""


def error_class(code: int) -> type[errors.BrokerError]:
    """The class of Kafka error `code` (KafkaError, neither retriable nor about metadata, for a
    code the client does not know), to ask `retriable` or `invalid_metadata` without making one."""
    return errors.for_kafka_code(code) or KafkaError


def raise_for(code: int, message: str) -> errors.BrokerError:
    """The exception for Kafka error `code` (the caller raises it or sets it on a future)."""
    cls = errors.for_kafka_code(code)
    if cls is not None:
        return cls("", message or None)
    err = KafkaError("", message or f"Kafka error code {code}")
    err.kafka_code = code
    return err


def call_failure(e: grpc.RpcError, address: str) -> errors.DcliError:
    """A broker call that failed without an answer, as the error a retry decision asks: no
    connection made (BrokerUnreachableError: nothing was sent), the connection broke
    (NetworkError: it may have been applied), no answer in time (RequestTimedOutError)."""
    return error_from_rpc(e, address, kafka=True)


class BrokerChannel:
    """The client's way to the brokers, as Kafka's client finds its way (producer, consumer and
    admin share it): Metadata from any server that answers, one channel per broker, requests
    for a partition to its leader and group requests to the group's coordinator.

        broker = BrokerChannel("127.0.0.1:7181,127.0.0.1:7182")    # the bootstrap servers
        broker.partition_count("chat")           # Metadata from the first server that answers
        leader = broker.leader("chat", 0)        # Leader(node_id, address, epoch), or None
        broker.stub(leader.address).Produce(request)
        broker.refresh(["chat"])                 # it said 6 NOT_LEADER_OR_FOLLOWER: ask again
        broker.call_coordinator("readers", "Heartbeat", request, timeout=10)
        broker.close()

    A server that cannot be reached is tried last next time. What is known of a topic is asked
    for again only after an error with it, and at most every 50 ms (ClusterMetadata).
    """

    def __init__(self, bootstrap_servers: str | list[str], timeout: float = 30.0):
        self.servers = parse_servers(bootstrap_servers)
        self.timeout = timeout
        self.cluster = ClusterMetadata(self.servers)
        self._stubs: dict[str, tuple[grpc.Channel, bpb_grpc.BrokerStub, grpc.UnaryUnaryMultiCallable]] = {}
        self._coordinators: dict[str, tuple[int, str]] = {}
        self._metadata_error: errors.DcliError | None = None     # why the last refresh failed
        self._lock = threading.Lock()

    def stub(self, address: str) -> bpb_grpc.BrokerStub:
        """The stub of the broker at `address` (one channel per address, opened on first use)."""
        return self._entry(address)[1]

    def encoded_produce(self, address: str) -> grpc.UnaryUnaryMultiCallable:
        """Produce on the broker at `address`, called with a request already in its wire
        bytes (`dcli.wire.produce_request`); the answer is a ProduceResponse."""
        return self._entry(address)[2]

    def _entry(self, address: str) -> tuple[grpc.Channel, bpb_grpc.BrokerStub, grpc.UnaryUnaryMultiCallable]:
        with self._lock:
            entry = self._stubs.get(address)
            if entry is None:
                channel = open_channel(address, BROKER_CHANNEL_OPTIONS)
                produce = channel.unary_unary("/dcli.v1.Broker/Produce",
                                              response_deserializer=bpb.ProduceResponse.FromString)
                entry = self._stubs[address] = (channel, bpb_grpc.BrokerStub(channel), produce)
            return entry

    # ---- any broker ----

    def call_any(self, method: str, request, timeout: float | None = None, idempotent: bool = True):
        """`method` on the first server that answers (see `_any`)."""
        return self._any(method, request, timeout, idempotent)[0]

    def _any(self, method: str, request, timeout: float | None, idempotent: bool = True):
        """(reply, address): `method` on the servers in turn (ClusterMetadata.candidates) until
        one answers. One that cannot be reached is skipped; with `idempotent`, one that does
        not answer in its share of the time left is skipped too (a request that may have been
        applied is not sent again elsewhere)."""
        total = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + total
        candidates = self.cluster.candidates()
        failure = None
        for i, address in enumerate(candidates):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                reply = getattr(self.stub(address), method)(
                    request, timeout=left / (len(candidates) - i) if idempotent else left)
            except grpc.RpcError as e:
                skip = e.code() == grpc.StatusCode.UNAVAILABLE or (
                    idempotent and e.code() == grpc.StatusCode.DEADLINE_EXCEEDED)
                if not skip:
                    raise rpc_error(e, address) from None
                self.cluster.failed(address)
                failure = rpc_error(e, address)
                continue
            self.cluster.answered(address)
            return reply, address
        raise failure or errors.UnavailableError("", f"No broker answered within {total:g} s")

    def metadata(self, topics: list[str] | None = None, auto_create: bool = False,
                 timeout: float | None = None) -> bpb.MetadataResponse:
        """Metadata of `topics` (None: all; []: the brokers only) from any server; it also
        updates what the client knows."""
        req = bpb.MetadataRequest(topics=topics or [], all_topics=topics is None,
                                  allow_auto_topic_creation=auto_create)
        reply, address = self._any("Metadata", req, timeout)
        self.cluster.update(reply, address, time.monotonic())
        self._metadata_error = None
        return reply

    # ---- topics and their leaders ----

    def partition_count(self, topic: str) -> int:
        """How many partitions `topic` has (asked once, creating it if the broker auto-creates).
        A topic a broker does not know yet (just created elsewhere) is asked for again for a
        few seconds before its error is raised."""
        n = self.cluster.partition_count(topic)
        if n is not None:
            return n
        deadline = time.monotonic() + UNKNOWN_TOPIC_WAIT_S
        while True:
            md = self.metadata([topic], auto_create=True)
            t = next((t for t in md.topics if t.name == topic), None)
            if t is not None and not t.error_code:
                return len(t.partitions)
            code = t.error_code if t is not None else UNKNOWN_TOPIC_OR_PARTITION
            if code not in (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE) or time.monotonic() >= deadline:
                raise raise_for(code, (t.error_message if t is not None else "")
                                or f"Topic {topic} not present in metadata.")
            time.sleep(RETRY_BACKOFF_S)

    def forget(self, topic: str) -> None:
        self.cluster.forget(topic)

    def leader(self, topic: str, partition: int) -> Leader | None:
        """The partition's leader as last known; None (and the topic due to be asked for
        again) when none is known."""
        found = self.cluster.leader(topic, partition)
        if found is None:
            self.cluster.invalidate([topic])
        return found

    def invalidate(self, topics) -> None:
        """What is known of `topics` may be wrong: the next `refresh_stale` asks for them."""
        self.cluster.invalidate(topics)

    def refresh(self, topics) -> None:
        """Ask for `topics` again now, unless that was done in the last 50 ms."""
        self.cluster.invalidate(topics)
        self._refresh(self.cluster.to_refresh(time.monotonic(), topics))

    def refresh_stale(self) -> None:
        """Ask for every topic marked stale that was not asked for in the last 50 ms. Best
        effort: when no server answers, they stay stale and are asked for later."""
        self._refresh(self.cluster.to_refresh(time.monotonic()))

    def refresh_wait(self) -> float | None:
        """Seconds until `refresh_stale` would ask for something; None: nothing is stale."""
        return self.cluster.refresh_wait(time.monotonic())

    def _refresh(self, topics: list[str]) -> None:
        if topics:
            try:
                self.metadata(topics)
            except errors.DcliError as e:
                LOGGER.debug("metadata of %s: %s", topics, e)
                self._metadata_error = e

    def unreachable(self, address: str, topics=()) -> None:
        """A call to `address` failed for want of a connection: try it last, and ask again
        who leads `topics`."""
        self.cluster.failed(address)
        self.cluster.invalidate(topics)

    def list_offsets(self, partitions: list[tuple[str, int]], which: int,
                     timeout: float | None = None) -> dict[tuple[str, int], int]:
        """ListOffsets, of each partition's leader: -2 earliest, -1 latest (the high
        watermark), else the first offset at or after that time. A leader that moved or cannot
        be reached is looked up again until `timeout`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        unknown_until = time.monotonic() + UNKNOWN_TOPIC_WAIT_S
        todo, out = list(dict.fromkeys(partitions)), {}
        while True:
            last: errors.DcliError | None = None
            for address, tps in self.by_leader(todo).items():
                req = bpb.ListOffsetsRequest(partitions=[
                    bpb.ListOffsetsPartition(topic=t, partition=p, timestamp=which) for t, p in tps])
                try:
                    reply = self.stub(address).ListOffsets(req, timeout=max(0.001, deadline - time.monotonic()))
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.UNAVAILABLE:
                        raise rpc_error(e, address) from None
                    self.unreachable(address, {t for t, _ in tps})
                    last = rpc_error(e, address)
                    continue
                for r in reply.partitions:
                    give_up = r.error_code == UNKNOWN_TOPIC_OR_PARTITION and time.monotonic() >= unknown_until
                    if error_class(r.error_code).invalid_metadata and not give_up:
                        self.invalidate([r.topic])
                        last = raise_for(r.error_code, r.error_message)
                    elif r.error_code:
                        raise raise_for(r.error_code, r.error_message)
                    else:
                        out[(r.topic, r.partition)] = r.offset
            todo = [tp for tp in todo if tp not in out]
            if not todo:
                return out
            if time.monotonic() + RETRY_BACKOFF_S >= deadline:
                raise last or self._metadata_error or raise_for(LEADER_NOT_AVAILABLE, "")
            time.sleep(RETRY_BACKOFF_S)
            self.refresh_stale()

    def leaders(self, partitions) -> dict[tuple[str, int], Leader]:
        """The known leaders of `partitions`. When some are unknown, their topics are asked for
        first (unless that was done in the last 50 ms); those still unknown are left out."""
        found = {tp: self.cluster.leader(*tp) for tp in partitions}
        if None in found.values():
            self.refresh({tp[0] for tp, leader in found.items() if leader is None})
            found = {tp: self.leader(*tp) if leader is None else leader for tp, leader in found.items()}
        return {tp: leader for tp, leader in found.items() if leader is not None}

    def by_leader(self, partitions) -> dict[str, list[tuple[str, int]]]:
        """`partitions` grouped by the address of their leader (see `leaders`)."""
        out: dict[str, list[tuple[str, int]]] = {}
        for tp, leader in self.leaders(partitions).items():
            out.setdefault(leader.address, []).append(tp)
        return out

    # ---- group coordinators ----

    def coordinator(self, group_id: str, timeout: float | None = None) -> tuple[int, str]:
        """(node id, address) of the broker coordinating `group_id` (FindCoordinator, asked of
        any broker, once until `forget_coordinator`); 15 COORDINATOR_NOT_AVAILABLE is asked
        again until `timeout`."""
        with self._lock:
            known = self._coordinators.get(group_id)
        if known is not None:
            return known
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            r, answered_by = self._any("FindCoordinator", bpb.FindCoordinatorRequest(key=group_id),
                                       max(0.001, deadline - time.monotonic()))
            if not r.error_code:
                host = host_of(answered_by) if r.host in WILDCARD_HOSTS else r.host
                found = (r.node_id, join_host_port(host, r.port))
                with self._lock:
                    self._coordinators[group_id] = found
                return found
            if not error_class(r.error_code).coordinator_moved or time.monotonic() + RETRY_BACKOFF_S >= deadline:
                raise raise_for(r.error_code, r.error_message)
            time.sleep(RETRY_BACKOFF_S)

    def forget_coordinator(self, group_id: str) -> None:
        with self._lock:
            self._coordinators.pop(group_id, None)

    def call_coordinator(self, group_id: str, method: str, request, timeout: float | None = None):
        """`method` on the group's coordinator. When it cannot be reached or answers that it
        is not (or not yet) the coordinator, the coordinator is found again and the request
        sent again, until `timeout`; then the last answer is returned (or the failure raised)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            _, address = self.coordinator(group_id, max(0.001, deadline - time.monotonic()))
            try:
                reply = getattr(self.stub(address), method)(request, timeout=max(0.001, deadline - time.monotonic()))
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() + RETRY_BACKOFF_S >= deadline:
                    raise rpc_error(e, address) from None
                self.cluster.failed(address)
            else:
                if not coordinator_moved(reply) or time.monotonic() + RETRY_BACKOFF_S >= deadline:
                    return reply
            self.forget_coordinator(group_id)
            time.sleep(RETRY_BACKOFF_S)

    def close(self) -> None:
        with self._lock:
            stubs, self._stubs = self._stubs, {}
        for channel, *_ in stubs.values():
            channel.close()


def coordinator_moved(reply) -> bool:
    """Whether a group RPC's answer says to ask another coordinator (an error that says so at
    the top or for any partition, group or result)."""
    if error_class(getattr(reply, "error_code", 0)).coordinator_moved:
        return True
    return any(error_class(x.error_code).coordinator_moved
               for field in ("partitions", "groups", "results") for x in getattr(reply, field, ()))


def rpc_error(e: grpc.RpcError, server: str) -> errors.DcliError:
    """A failed call as one of the project's errors (one line for the CLI)."""
    return error_from_rpc(e, server)
