"""The client's picture of the broker cluster: leaders from Metadata answers, which topics are
asked for again and when, the order servers are tried in, and how requests group by leader."""
from __future__ import annotations

from dcli.client.broker_common import BrokerChannel, coordinator_moved
from dcli.client.broker_metadata import ClusterMetadata, Leader
from dcli.v1 import broker_pb2 as bpb

A, B, C = "127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"


def reply(*topics, brokers=((1, "127.0.0.1", 9001), (2, "127.0.0.1", 9002))) -> bpb.MetadataResponse:
    return bpb.MetadataResponse(brokers=[bpb.BrokerInfo(node_id=i, host=h, port=p) for i, h, p in brokers],
                                topics=list(topics))


def topic(name: str, *leaders: tuple[int, int], error: int = 0) -> bpb.TopicMetadata:
    """A topic whose partition i has leader and epoch leaders[i]."""
    return bpb.TopicMetadata(name=name, error_code=error, partitions=[
        bpb.PartitionState(partition=i, leader=leader, leader_epoch=epoch) for i, (leader, epoch) in enumerate(leaders)])


def test_leaders_come_with_their_address_and_epoch():
    md = ClusterMetadata([A])
    md.update(reply(topic("chat", (1, 4), (2, 7), (-1, 7), (9, 1))), answered_by=A, now=0.0)
    assert md.partition_count("chat") == 4
    assert md.leader("chat", 0) == Leader(1, A, 4)
    assert md.leader("chat", 1) == Leader(2, B, 7)
    assert md.leader("chat", 2) is None                # no leader (-1): an election
    assert md.leader("chat", 3) is None                # a broker the answer did not list
    assert md.leader("chat", 4) is None and md.leader("other", 0) is None
    assert md.brokers() == {1: A, 2: B}


def test_a_new_answer_moves_the_leader():
    md = ClusterMetadata([A])
    md.update(reply(topic("chat", (1, 4))), answered_by=A, now=0.0)
    md.update(reply(topic("chat", (2, 5))), answered_by=B, now=1.0)
    assert md.leader("chat", 0) == Leader(2, B, 5)


def test_a_broker_on_a_wildcard_address_is_reached_where_it_answered():
    md = ClusterMetadata(["db1:7181"])
    md.update(reply(topic("chat", (1, 0), (2, 0)), brokers=((1, "0.0.0.0", 7181), (2, "::1", 7182))),
              answered_by="db1:7181", now=0.0)
    assert md.brokers() == {1: "db1:7181", 2: "[::1]:7182"}


def test_a_topic_error_keeps_the_count_and_forgets_the_leaders():
    md = ClusterMetadata([A])
    md.update(reply(topic("chat", (1, 0), (2, 0))), answered_by=A, now=0.0)
    md.update(reply(topic("chat", error=5), topic("new", error=3)), answered_by=A, now=1.0)
    assert md.partition_count("chat") == 2 and md.leader("chat", 0) is None
    assert md.partition_count("new") is None
    md.forget("chat")
    assert md.partition_count("chat") is None


def test_stale_topics_are_asked_for_at_most_once_per_interval():
    md = ClusterMetadata([A], min_refresh_s=0.05)
    assert md.refresh_wait(0.0) is None and md.to_refresh(0.0) == []
    md.invalidate(["chat", "news"])
    assert md.refresh_wait(0.0) == 0
    assert md.to_refresh(10.0, topics=["chat"]) == ["chat"]
    assert md.to_refresh(10.0) == ["news"]
    md.invalidate(["chat"])                     # another error at once: not asked again yet
    assert md.to_refresh(10.01) == []
    assert abs(md.refresh_wait(10.01) - 0.04) < 1e-9
    assert md.to_refresh(10.05) == ["chat", "news"]     # asked for, but no answer took them in


def test_an_answer_makes_a_topic_fresh():
    md = ClusterMetadata([A], min_refresh_s=0.05)
    md.invalidate(["chat"])
    md.update(reply(topic("chat", (1, 0))), answered_by=A, now=5.0)
    assert md.refresh_wait(5.0) is None and md.to_refresh(6.0) == []


def test_servers_are_tried_the_last_good_first_and_the_failed_last():
    md = ClusterMetadata([A, B, A])
    assert md.candidates() == [A, B]
    md.update(reply(brokers=((2, "127.0.0.1", 9002), (3, "127.0.0.1", 9003))), answered_by=B, now=0.0)
    assert md.candidates() == [A, B, C]         # brokers the cluster listed join the bootstrap list
    md.failed(A)
    assert md.candidates() == [B, C, A]
    md.answered(C)
    assert md.candidates() == [C, B, A]


def test_requests_group_by_leader_and_an_unknown_leader_is_asked_for_again():
    broker = BrokerChannel([A])                 # no channel is opened until a stub is wanted
    broker.cluster.update(reply(topic("chat", (1, 0), (2, 0), (1, 0), (-1, 0))), answered_by=A, now=0.0)
    assert broker.by_leader([("chat", p) for p in range(3)]) == {A: [("chat", 0), ("chat", 2)], B: [("chat", 1)]}
    assert broker.cluster.to_refresh(1.0) == []
    assert broker.leader("chat", 3) is None and broker.leader("other", 0) is None
    assert broker.cluster.to_refresh(1.0) == ["chat", "other"]
    broker.close()


def test_group_answers_that_name_another_coordinator():
    assert coordinator_moved(bpb.HeartbeatResponse(error_code=16))
    assert coordinator_moved(bpb.JoinGroupResponse(error_code=15))
    assert coordinator_moved(bpb.OffsetCommitResponse(partitions=[bpb.PartitionError(error_code=16)]))
    assert coordinator_moved(bpb.DescribeGroupsResponse(groups=[bpb.DescribedGroup(error_code=15)]))
    assert not coordinator_moved(bpb.HeartbeatResponse(error_code=27))
    assert not coordinator_moved(bpb.ListGroupsResponse())
