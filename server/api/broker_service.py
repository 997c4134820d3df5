"""The Broker service (broker.proto): metadata, topics, configs, producer ids, produce, fetch and
offsets, translated to and from the domain Broker; the consumer-group RPCs come from GroupRpcs
(broker_groups.py).

A failure of one topic or partition travels as its `error_code` (Kafka's number) and
`error_message` (Kafka's words); a request that makes no sense as a whole (acks=5, a negative
wait) is refused with INVALID_ARGUMENT and one line saying why.
"""
from __future__ import annotations

import logging

from dcli.v1 import broker_pb2 as pb
from dcli.v1 import broker_pb2_grpc as pb_grpc
from dcli.wire.errors import BadArgumentsError, BrokerError
from dcli_server.api.broker_groups import GroupRpcs, Groups
from dcli_server.api.errors import guarded, kafka_fields
from dcli_server.broker.broker import Broker
from dcli_server.broker.requests import FetchItem, NewTopic

log = logging.getLogger("dcli.server")


def _given(message, field: str, absent: int = -1) -> int:
    """An optional number of the request: `absent` (Kafka's -1) when the client left it out."""
    return getattr(message, field) if message.HasField(field) else absent


def _require(ok: bool, message: str) -> None:
    """A request that makes no sense as a whole: INVALID_ARGUMENT, saying why."""
    if not ok:
        raise BadArgumentsError("", message)


async def fetch(broker: Broker, request: pb.FetchRequest, *, replica_id: int) -> pb.FetchResponse:
    """A Fetch, for a consumer (replica_id -1, the client port) or for the follower that broker
    `replica_id` is (the peer port, which knows who asks). Negative sizes and waits are refused;
    a wait or size past the broker's bounds (dcli.fetch.max.wait.ms, fetch.max.bytes) is
    clamped by Broker.fetch, as Kafka clamps max_bytes."""
    for name in ("max_wait_ms", "min_bytes", "max_bytes"):
        value = getattr(request, name)
        _require(value >= 0, f"{name} must not be negative, not {value}")
    for p in request.partitions:
        _require(p.partition_max_bytes >= 0,
                 f"partition_max_bytes must not be negative, not {p.partition_max_bytes}")
    items = [FetchItem(p.topic, p.partition, p.fetch_offset, p.partition_max_bytes,
                       _given(p, "current_leader_epoch")) for p in request.partitions]
    results = await broker.fetch(items, max_wait_ms=request.max_wait_ms, min_bytes=request.min_bytes,
                                 max_bytes=request.max_bytes, replica_id=replica_id)
    return pb.FetchResponse(partitions=[
        pb.FetchedPartition(topic=r.topic, partition=r.partition, high_watermark=r.high_watermark,
                            log_start_offset=r.log_start_offset, log_end_offset=r.log_end_offset,
                            records=r.records, **kafka_fields(r.error))
        for r in results])


async def offset_for_leader_epoch(broker: Broker, request: pb.OffsetForLeaderEpochRequest,
                                  ) -> pb.OffsetForLeaderEpochResponse:
    """Where a leader epoch ends in this leader's log (a follower truncates there first, KIP-101)."""
    try:
        epoch, end = await broker.offset_for_leader_epoch(
            request.topic, request.partition, request.current_leader_epoch, request.leader_epoch)
    except BrokerError as e:
        return pb.OffsetForLeaderEpochResponse(leader_epoch=-1, end_offset=-1, **kafka_fields(e))
    return pb.OffsetForLeaderEpochResponse(leader_epoch=epoch, end_offset=end)


async def elect_leaders(broker: Broker, request: pb.ElectLeadersRequest, *,
                        forwarded: bool) -> pb.ElectLeadersResponse:
    """A leader election, done by the controller: this broker if it is the one, else (unless it
    was `forwarded` here by another broker already) handed to it once."""
    _require(request.election_type in (0, 1), f"election_type must be 0 (preferred) or 1 (unclean), "
                                              f"not {request.election_type}")
    wanted = None if request.all_partitions else [(p.topic, p.partition) for p in request.partitions]
    try:
        results = await broker.elect_leaders(wanted, unclean=request.election_type == 1, forwarded=forwarded)
    except BrokerError as e:
        return pb.ElectLeadersResponse(**kafka_fields(e))
    return pb.ElectLeadersResponse(results=[
        pb.PartitionError(topic=t, partition=i, **kafka_fields(e)) for (t, i), e in sorted(results.items())])


class BrokerService(GroupRpcs, pb_grpc.BrokerServicer):
    def __init__(self, broker: Broker, groups: Groups):
        self._broker = broker
        self._groups = groups

    # -- metadata and topics ----------------------------------------------------------------

    @guarded
    async def Metadata(self, request: pb.MetadataRequest, context) -> pb.MetadataResponse:
        b = self._broker
        names = None if (request.all_topics and not request.topics) else list(request.topics)
        described = await b.metadata(names, allow_auto_topic_creation=request.allow_auto_topic_creation)
        topics = []
        for t in described:
            parts = [pb.PartitionState(partition=p.partition, leader=p.leader, leader_epoch=p.leader_epoch,
                                       replicas=p.replicas, isr=p.isr, offline_replicas=p.offline_replicas)
                     for p in t.partitions]
            topics.append(pb.TopicMetadata(name=t.name, topic_id=t.topic_id, is_internal=t.is_internal,
                                           partitions=parts, configs=t.configs, **kafka_fields(t.error)))
        return pb.MetadataResponse(
            brokers=[pb.BrokerInfo(node_id=i, host=h, port=p) for i, h, p in b.broker_infos()],
            controller_id=b.controller_id, cluster_id=b.cluster_id, topics=topics)

    @guarded
    async def CreateTopics(self, request: pb.CreateTopicsRequest, context) -> pb.CreateTopicsResponse:
        wanted = [NewTopic(t.name, _given(t, "num_partitions"), _given(t, "replication_factor"), dict(t.configs),
                           {p: list(r.broker_ids) for p, r in t.assignments.items()})
                  for t in request.topics]
        results = await self._broker.create_topics(wanted, validate_only=request.validate_only)
        return pb.CreateTopicsResponse(topics=[
            pb.TopicResult(name=r.name, topic_id=r.topic_id, **kafka_fields(r.error)) for r in results])

    @guarded
    async def DeleteTopics(self, request: pb.DeleteTopicsRequest, context) -> pb.DeleteTopicsResponse:
        results = await self._broker.delete_topics(list(request.names))
        return pb.DeleteTopicsResponse(topics=[
            pb.TopicResult(name=r.name, topic_id=r.topic_id, **kafka_fields(r.error)) for r in results])

    @guarded
    async def CreatePartitions(self, request: pb.CreatePartitionsRequest, context) -> pb.CreatePartitionsResponse:
        r = await self._broker.create_partitions(request.topic, request.count,
                                                 validate_only=request.validate_only)
        return pb.CreatePartitionsResponse(
            result=pb.TopicResult(name=r.name, topic_id=r.topic_id, **kafka_fields(r.error)))

    @guarded
    async def ElectLeaders(self, request: pb.ElectLeadersRequest, context) -> pb.ElectLeadersResponse:
        # `forwarded` is what a broker says on the peer port when it hands an election on
        return await elect_leaders(self._broker, request, forwarded=False)

    @guarded
    async def DescribeConfigs(self, request: pb.DescribeConfigsRequest, context) -> pb.DescribeConfigsResponse:
        await self._broker.ready()          # a topic of the tree is known once the broker read it
        try:
            entries = self._broker.describe_configs(request.topic)
        except BrokerError as e:
            return pb.DescribeConfigsResponse(**kafka_fields(e))
        return pb.DescribeConfigsResponse(entries=[
            pb.ConfigEntry(name=c.name, value=c.value, is_default=c.is_default, read_only=c.read_only)
            for c in entries])

    @guarded
    async def FindCoordinator(self, request: pb.FindCoordinatorRequest, context) -> pb.FindCoordinatorResponse:
        try:
            node_id, host, port = self._broker.coordinator_for(request.key)
        except BrokerError as e:
            return pb.FindCoordinatorResponse(node_id=-1, **kafka_fields(e))
        return pb.FindCoordinatorResponse(node_id=node_id, host=host, port=port)

    # -- producing and consuming ------------------------------------------------------------

    @guarded
    async def InitProducerId(self, request: pb.InitProducerIdRequest, context) -> pb.InitProducerIdResponse:
        try:        # no producer_id (or -1) asks for a new one, as Kafka's -1 does
            pid, epoch = await self._broker.init_producer_id(_given(request, "producer_id"),
                                                             request.producer_epoch)
        except BrokerError as e:
            return pb.InitProducerIdResponse(producer_id=-1, producer_epoch=-1, **kafka_fields(e))
        return pb.InitProducerIdResponse(producer_id=pid, producer_epoch=epoch)

    @guarded
    async def Produce(self, request: pb.ProduceRequest, context) -> pb.ProduceResponse:
        _require(request.acks in (-1, 0, 1), f"acks must be 0, 1 or -1 (all), not {request.acks}")
        _require(request.timeout_ms >= 0, f"timeout_ms must not be negative, not {request.timeout_ms}")
        items = [(p.topic, p.partition, p.records) for p in request.partitions]
        results = await self._broker.produce(request.acks, request.timeout_ms, items)
        if request.acks == 0:
            return pb.ProduceResponse()
        return pb.ProduceResponse(partitions=[
            pb.PartitionProduceResult(topic=r.topic, partition=r.partition, base_offset=r.base_offset,
                                      log_append_time_ms=-1, log_start_offset=r.log_start_offset,
                                      **kafka_fields(r.error))
            for r in results])

    @guarded
    async def Fetch(self, request: pb.FetchRequest, context) -> pb.FetchResponse:
        _require(_given(request, "replica_id") < 0,
                 "replica_id: only a broker fetches as a replica, and only on the peer port")
        return await fetch(self._broker, request, replica_id=-1)

    @guarded
    async def ListOffsets(self, request: pb.ListOffsetsRequest, context) -> pb.ListOffsetsResponse:
        await self._broker.ready()
        results = self._broker.list_offsets([(p.topic, p.partition, p.timestamp) for p in request.partitions])
        return pb.ListOffsetsResponse(partitions=[
            pb.ListedOffset(topic=r.topic, partition=r.partition, offset=r.offset,
                            timestamp=r.timestamp, **kafka_fields(r.error))
            for r in results])
