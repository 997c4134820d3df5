"""Admin: topics, configs and consumer groups on the brokers (Kafka's Admin client, the calls
kafka-topics and kafka-consumer-groups make).

    from dcli.client import Admin

    with Admin("127.0.0.1:7181,127.0.0.1:7182") as admin:
        admin.create_topic("chat", partitions=3)
        for t in admin.describe_topics(["chat"]):
            print(t.name, t.topic_id, [p.leader for p in t.partitions])
        print(admin.find_coordinator("readers"))      # (1, '127.0.0.1:7181')

Topic requests and Metadata go to any broker that answers (the bootstrap servers in turn);
ListOffsets to each partition's leader; a group's requests to its coordinator; ListGroups to
every broker, whose answers are merged.
"""
from __future__ import annotations

import grpc

from dcli.client.broker_common import BrokerChannel, raise_for, rpc_error
from dcli.v1 import broker_pb2 as bpb


class Admin:
    def __init__(self, bootstrap_servers: str = "127.0.0.1:7181", timeout: float = 30.0):
        self._broker = BrokerChannel(bootstrap_servers, timeout=timeout)
        self.timeout = timeout

    def _call(self, method: str, request, idempotent: bool = True):
        return self._broker.call_any(method, request, self.timeout, idempotent=idempotent)

    def _group_call(self, group_id: str, method: str, request):
        return self._broker.call_coordinator(group_id, method, request, self.timeout)

    def create_topic(self, name: str, partitions: int = -1, replication_factor: int = -1,
                     configs: dict[str, str] | None = None, validate_only: bool = False) -> str:
        """Create one topic; returns its topic id. Raises the broker's error for it."""
        reply = self._call("CreateTopics", bpb.CreateTopicsRequest(
            topics=[bpb.CreatableTopic(name=name, num_partitions=partitions,
                                       replication_factor=replication_factor, configs=configs or {})],
            validate_only=validate_only), idempotent=False)
        [result] = reply.topics
        if result.error_code:
            raise raise_for(result.error_code, result.error_message)
        return result.topic_id

    def delete_topic(self, name: str) -> None:
        [result] = self._call("DeleteTopics", bpb.DeleteTopicsRequest(names=[name]), idempotent=False).topics
        if result.error_code:
            raise raise_for(result.error_code, result.error_message)
        self._broker.forget(name)

    def create_partitions(self, topic: str, total: int, validate_only: bool = False) -> None:
        result = self._call("CreatePartitions", bpb.CreatePartitionsRequest(
            topic=topic, count=total, validate_only=validate_only), idempotent=False).result
        if result.error_code:
            raise raise_for(result.error_code, result.error_message)
        self._broker.forget(topic)

    def elect_leaders(self, partitions: list[tuple[str, int]] | None = None, *, unclean: bool = False
                      ) -> dict[tuple[str, int], Exception | None]:
        """Preferred (or unclean) leader election for `partitions` (None: all); per partition
        None when elected, else the broker's error (ElectionNotNeededError: already led so)."""
        reply = self._call("ElectLeaders", bpb.ElectLeadersRequest(
            election_type=1 if unclean else 0, all_partitions=partitions is None,
            partitions=[bpb.TopicPartition(topic=t, partition=p) for t, p in partitions or ()]))
        if reply.error_code:
            raise raise_for(reply.error_code, reply.error_message)
        return {(r.topic, r.partition): raise_for(r.error_code, r.error_message) if r.error_code else None
                for r in reply.results}

    def list_topics(self) -> list[str]:
        return sorted(t.name for t in self.metadata().topics if not t.error_code)

    def describe_topics(self, names: list[str] | None = None) -> list[bpb.TopicMetadata]:
        """Each topic's metadata (partitions with leader, replicas, isr), sorted by name; a
        missing topic raises the broker's error for it."""
        md = self.metadata(names)
        for t in md.topics:
            if t.error_code:
                raise raise_for(t.error_code, t.error_message)
        return sorted(md.topics, key=lambda t: t.name)

    def metadata(self, names: list[str] | None = None) -> bpb.MetadataResponse:
        return self._broker.metadata(names, auto_create=False, timeout=self.timeout)

    def describe_configs(self, topic: str = "") -> list[bpb.ConfigEntry]:
        reply = self._call("DescribeConfigs", bpb.DescribeConfigsRequest(topic=topic))
        if reply.error_code:
            raise raise_for(reply.error_code, reply.error_message)
        return list(reply.entries)

    # ---- consumer groups (what kafka-consumer-groups calls) ----

    def find_coordinator(self, group_id: str) -> tuple[int, str]:
        """(node id, host:port) of the broker coordinating `group_id`."""
        return self._broker.coordinator(group_id, self.timeout)

    def list_groups(self) -> list[bpb.ListedGroup]:
        """The groups of every broker (each lists those it coordinates), by group id. A broker
        that cannot be reached is left out, unless none can."""
        self._broker.metadata([], timeout=self.timeout)
        found: dict[str, bpb.ListedGroup] = {}
        failure = None
        answered = False
        for address in sorted(set(self._broker.cluster.brokers().values())):
            try:
                reply = self._broker.stub(address).ListGroups(bpb.ListGroupsRequest(), timeout=self.timeout)
            except grpc.RpcError as e:
                failure = rpc_error(e, address)
                continue
            answered = True
            for g in reply.groups:
                found.setdefault(g.group_id, g)
        if not answered and failure is not None:
            raise failure
        return list(found.values())

    def describe_groups(self, group_ids: list[str]) -> list[bpb.DescribedGroup]:
        return [g for group_id in group_ids for g in self._group_call(
            group_id, "DescribeGroups", bpb.DescribeGroupsRequest(group_ids=[group_id])).groups]

    def delete_groups(self, group_ids: list[str]) -> list[bpb.PartitionError]:
        """(group, error_code, error_message) per group, in `results` (topic = the group id)."""
        return [r for group_id in group_ids for r in self._group_call(
            group_id, "DeleteGroups", bpb.DeleteGroupsRequest(group_ids=[group_id])).results]

    def committed_offsets(self, group_id: str) -> dict[tuple[str, int], int]:
        reply = self._group_call(group_id, "OffsetFetch", bpb.OffsetFetchRequest(group_id=group_id))
        if reply.error_code:
            raise raise_for(reply.error_code, reply.error_message)
        return {(c.topic, c.partition): c.offset for c in reply.partitions if c.offset >= 0}

    def commit_offsets(self, group_id: str, offsets: dict[tuple[str, int], int]) -> None:
        """Commit from outside the group (generation -1): only into an inactive group."""
        reply = self._group_call(group_id, "OffsetCommit", bpb.OffsetCommitRequest(
            group_id=group_id, generation_id=-1, member_id="", partitions=[
                bpb.OffsetCommitPartition(topic=t, partition=p, offset=o) for (t, p), o in offsets.items()]))
        for r in reply.partitions:
            if r.error_code:
                raise raise_for(r.error_code, r.error_message)

    def list_offsets(self, partitions: list[tuple[str, int]], which: int) -> dict[tuple[str, int], int]:
        """-2 earliest, -1 latest (the high watermark), else the first offset at that time; of
        each partition's leader."""
        return self._broker.list_offsets(partitions, which, self.timeout)

    def close(self) -> None:
        self._broker.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
