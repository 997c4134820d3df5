"""The broker over raw gRPC against a real server process: topics and their errors, produce and
fetch byte for byte, acks, bad batches, long polls, idempotent retries, and what survives a
SIGKILL (nothing acknowledged is lost)."""
from __future__ import annotations

import threading
import uuid

import grpc
import pytest

from dcli.v1 import broker_pb2 as pb
from dcli.v1 import broker_pb2_grpc as pb_grpc
from dcli.wire.records import (
    Record, build_batch, decode_records, iter_batches, with_base_offset, with_leader_epoch,
)

WAIT_S = 30   # a bound for what should come at once; never a measurement


@pytest.fixture
def stub(server):
    with grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 64 << 20),
                                                        ("grpc.max_receive_message_length", 64 << 20)]) as ch:
        yield pb_grpc.BrokerStub(ch)


@pytest.fixture
def topic():
    return f"t-{uuid.uuid4().hex[:10]}"


def connect(srv) -> tuple[grpc.Channel, pb_grpc.BrokerStub]:
    ch = grpc.insecure_channel(srv.address, options=[("grpc.max_receive_message_length", 64 << 20)])
    return ch, pb_grpc.BrokerStub(ch)


def create(stub, name, partitions=1, rf=-1, **configs) -> pb.TopicResult:
    resp = stub.CreateTopics(pb.CreateTopicsRequest(topics=[pb.CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=rf, configs=configs)]), timeout=WAIT_S)
    return resp.topics[0]


def produce(stub, topic, records: bytes, partition=0, acks=-1) -> pb.PartitionProduceResult | None:
    resp = stub.Produce(pb.ProduceRequest(acks=acks, timeout_ms=10000, partitions=[
        pb.PartitionRecords(topic=topic, partition=partition, records=records)]), timeout=WAIT_S)
    return resp.partitions[0] if resp.partitions else None


def fetch(stub, topic, offset=0, partition=0, max_wait_ms=0, min_bytes=1, timeout=WAIT_S) -> pb.FetchedPartition:
    resp = stub.Fetch(pb.FetchRequest(replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=min_bytes,
                                      max_bytes=32 << 20, partitions=[pb.FetchPartition(
                                          topic=topic, partition=partition, fetch_offset=offset,
                                          partition_max_bytes=32 << 20, current_leader_epoch=-1)]),
                      timeout=timeout)
    return resp.partitions[0]


def batch(*values: bytes, keys=None, **kwargs) -> bytes:
    keys = keys or [b"key-%d" % i for i in range(len(values))]
    return build_batch([Record(k, v) for k, v in zip(keys, values)], **kwargs)


def stored(data: bytes, offset: int) -> bytes:
    return with_leader_epoch(with_base_offset(data, offset), 0)


def describe(stub, *names) -> list[pb.TopicMetadata]:
    return list(stub.Metadata(pb.MetadataRequest(topics=names), timeout=WAIT_S).topics)


# -- topics ------------------------------------------------------------------------------------------


def test_create_describe_list_and_delete(stub, topic):
    created = create(stub, topic, 3, **{"retention.ms": "100000"})
    assert created.error_code == 0 and len(created.topic_id) == 22
    [t] = describe(stub, topic)
    assert t.topic_id == created.topic_id and t.error_code == 0
    assert [(p.partition, p.leader, list(p.replicas), list(p.isr)) for p in t.partitions] == [
        (i, 1, [1], [1]) for i in range(3)]
    assert dict(t.configs) == {"retention.ms": "100000"}
    everything = stub.Metadata(pb.MetadataRequest(all_topics=True), timeout=WAIT_S)
    assert topic in [x.name for x in everything.topics]
    assert everything.cluster_id and everything.controller_id == 1
    assert [b.node_id for b in everything.brokers] == [1]
    configs = stub.DescribeConfigs(pb.DescribeConfigsRequest(topic=topic), timeout=WAIT_S)
    assert {(c.name, c.value, c.is_default) for c in configs.entries} >= {
        ("retention.ms", "100000", False), ("cleanup.policy", "delete", True)}
    [deleted] = stub.DeleteTopics(pb.DeleteTopicsRequest(names=[topic]), timeout=WAIT_S).topics
    assert deleted.error_code == 0
    [gone] = describe(stub, topic)
    assert gone.error_code == 3


def test_topic_errors_in_kafkas_words(stub, topic):
    assert create(stub, topic).error_code == 0
    again = create(stub, topic)
    assert (again.error_code, again.error_message) == (36, f"Topic '{topic}' already exists.")
    zero = create(stub, topic + "x", 0)
    assert (zero.error_code, zero.error_message) == (37, "Number of partitions must be larger than 0.")
    rf = create(stub, topic + "y", 1, rf=3)
    assert (rf.error_code, rf.error_message) == (38, (
        "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be "
        "reached because only 1 broker(s) are registered."))
    bad_config = create(stub, topic + "z", 1, **{"no.such": "1"})
    assert (bad_config.error_code, bad_config.error_message) == (40, "Unknown topic config name: no.such")
    [missing] = stub.DeleteTopics(pb.DeleteTopicsRequest(names=[topic + "-missing"]), timeout=WAIT_S).topics
    assert missing.error_code == 3
    grow = stub.CreatePartitions(pb.CreatePartitionsRequest(topic=topic, count=3), timeout=WAIT_S).result
    assert grow.error_code == 0 and len(describe(stub, topic)[0].partitions) == 3
    shrink = stub.CreatePartitions(pb.CreatePartitionsRequest(topic=topic, count=2), timeout=WAIT_S).result
    assert (shrink.error_code, shrink.error_message) == (
        37, f"The topic {topic} currently has 3 partition(s); 2 would not be an increase.")


@pytest.mark.parametrize("name", ["../x", "a/b", "x" * 250, "..", "/etc/passwd", "a\x00b"])
def test_bad_names_are_refused_and_nothing_is_made_outside(server, stub, name):
    outside = set(server.data_dir.parent.iterdir())
    inside = set((server.data_dir / "broker").iterdir())
    result = create(stub, name)
    assert result.error_code == 17 and result.error_message.startswith("Topic name is invalid: ")
    r = produce(stub, name, batch(b"v"))
    assert r.error_code == 17
    [t] = describe(stub, name)
    assert t.error_code == 17
    assert set(server.data_dir.parent.iterdir()) == outside
    assert set((server.data_dir / "broker").iterdir()) == inside


def test_group_rpcs_are_served(stub):
    [d] = stub.DescribeGroups(pb.DescribeGroupsRequest(group_ids=["nobody-here"]), timeout=WAIT_S).groups
    assert d.state == "Dead" and d.error_code == 0          # Kafka describes an unknown group as Dead
    r = stub.Heartbeat(pb.HeartbeatRequest(group_id="nobody-here", generation_id=1, member_id="m"), timeout=WAIT_S)
    assert r.error_code == 25                              # UNKNOWN_MEMBER_ID


# -- produce and fetch ---------------------------------------------------------------------------------


def test_keyed_records_come_back_byte_identical_at_contiguous_offsets(stub, topic):
    create(stub, topic, 2)
    sent = [batch(b"v%d" % i, b"w%d" % i, keys=[b"user-%d" % i, b"user-x"]) for i in range(5)]
    offsets = [produce(stub, topic, data, partition=1).base_offset for data in sent]
    assert offsets == [0, 2, 4, 6, 8]
    got = fetch(stub, topic, partition=1)
    assert got.error_code == 0 and got.high_watermark == 10 and got.log_end_offset == 10
    assert got.records == b"".join(stored(d, o) for d, o in zip(sent, offsets))
    records = [r for _, x in iter_batches(got.records) for r in decode_records(x)]
    assert [r.offset for r in records] == list(range(10))
    assert records[0].key == b"user-0" and records[9].value == b"w4"


def test_acks_0_1_and_all(stub, topic):
    create(stub, topic)
    assert produce(stub, topic, batch(b"zero"), acks=0) is None
    one = produce(stub, topic, batch(b"one"), acks=1)
    assert one.error_code == 0 and one.base_offset == 1
    every = produce(stub, topic, batch(b"all"), acks=-1)
    assert every.error_code == 0 and every.base_offset == 2
    values = [decode_records(x)[0].value for _, x in iter_batches(fetch(stub, topic).records)]
    assert values == [b"zero", b"one", b"all"]
    with pytest.raises(grpc.RpcError) as e:
        produce(stub, topic, batch(b"x"), acks=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == "acks must be 0, 1 or -1 (all), not 5"
    assert produce(stub, topic, batch(b"still"), acks=-1).base_offset == 3


def test_a_bad_crc_is_refused_and_the_log_is_intact(stub, topic):
    create(stub, topic)
    good = batch(b"good")
    produce(stub, topic, good)
    bad = bytearray(batch(b"bad"))
    bad[-2] ^= 0x55
    r = produce(stub, topic, bytes(bad))
    assert r.error_code == 2 and "crc" in r.error_message
    r = produce(stub, topic, b"\x00" * 10)
    assert r.error_code == 2
    got = fetch(stub, topic)
    assert got.records == stored(good, 0) and got.log_end_offset == 1


def test_an_oversize_batch_is_refused(stub, topic):
    create(stub, topic)
    big = batch(b"x" * (1100 * 1024))
    r = produce(stub, topic, big)
    assert r.error_code == 10 and "exceeds the maximum configured value of 1048588" in r.error_message
    assert fetch(stub, topic).log_end_offset == 0


def test_offsets_out_of_range_and_list_offsets(stub, topic):
    create(stub, topic)
    produce(stub, topic, build_batch([Record(b"k", b"a", (), 1000), Record(b"k", b"b", (), 2000)]))
    for offset in (3, -5):
        r = fetch(stub, topic, offset=offset, max_wait_ms=600_000)
        assert r.error_code == 1 and r.high_watermark == 2
    assert fetch(stub, topic + "-none").error_code == 3
    resp = stub.ListOffsets(pb.ListOffsetsRequest(partitions=[
        pb.ListOffsetsPartition(topic=topic, partition=0, timestamp=ts) for ts in (-2, -1, 1500)]),
        timeout=WAIT_S)
    assert [(p.error_code, p.offset) for p in resp.partitions] == [(0, 0), (0, 2), (0, 1)]
    assert resp.partitions[2].timestamp == 2000


def test_a_long_poll_fetch_is_woken_by_a_produce(stub, topic):
    create(stub, topic)
    out: dict = {}

    def poll():
        out["r"] = fetch(stub, topic, max_wait_ms=600_000, timeout=600)
    t = threading.Thread(target=poll, daemon=True)
    t.start()
    produce(stub, topic, batch(b"wake up"), acks=1)
    t.join(WAIT_S)      # the fetch may wait 600 s: only a wake-up ends it in time
    assert not t.is_alive()
    assert decode_records(out["r"].records)[0].value == b"wake up"


def test_an_idempotent_retry_is_appended_once(stub, topic):
    create(stub, topic)
    ids = stub.InitProducerId(pb.InitProducerIdRequest(producer_id=-1, producer_epoch=-1), timeout=WAIT_S)
    assert ids.error_code == 0 and ids.producer_id >= 0 and ids.producer_epoch == 0
    produce(stub, topic, batch(b"before"))
    data = batch(b"once", b"twice", producer_id=ids.producer_id, producer_epoch=0, base_sequence=0)
    first = produce(stub, topic, data)
    retry = produce(stub, topic, data)
    assert first.base_offset == retry.base_offset == 1 and retry.error_code == 0
    assert fetch(stub, topic).log_end_offset == 3
    gap = produce(stub, topic, batch(b"lost one", producer_id=ids.producer_id, producer_epoch=0,
                                      base_sequence=7))
    assert gap.error_code == 45 and gap.error_message.startswith("Out of order sequence number")


# -- restarts --------------------------------------------------------------------------------------------


def test_topics_and_producer_ids_survive_a_kill(fresh_server):
    ch, s = connect(fresh_server)
    with ch:
        created = create(s, "kept", 2)
        pid = s.InitProducerId(pb.InitProducerIdRequest(producer_id=-1, producer_epoch=-1), timeout=WAIT_S).producer_id
        data = batch(b"a", producer_id=pid, producer_epoch=0, base_sequence=0)
        produce(s, "kept", data, partition=1)
    fresh_server.restart()
    ch, s = connect(fresh_server)
    with ch:
        [t] = describe(s, "kept")
        assert t.topic_id == created.topic_id and len(t.partitions) == 2
        again = s.InitProducerId(pb.InitProducerIdRequest(producer_id=-1, producer_epoch=-1), timeout=WAIT_S)
        assert again.producer_id > pid
        retry = produce(s, "kept", data, partition=1)   # still known as a duplicate
        assert retry.base_offset == 0 and fetch(s, "kept", partition=1).log_end_offset == 1


def test_partition_directories_of_topics_the_tree_does_not_have_are_removed(fresh_server):
    ch, s = connect(fresh_server)
    with ch:
        create(s, "kept", 1)
    fresh_server.kill()
    ghost = fresh_server.data_dir / "broker" / "ghost-0"          # a topic deleted while down
    ghost.mkdir()
    (ghost / "partition.metadata").write_text("version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n")
    fresh_server.start()
    ch, s = connect(fresh_server)
    with ch:
        [t] = describe(s, "kept")                   # answered once the broker has read the tree
        assert t.error_code == 0 and len(t.partitions) == 1
    assert not ghost.exists() and (fresh_server.data_dir / "broker" / "kept-0").is_dir()


def test_nothing_acknowledged_is_lost_when_the_server_is_killed(fresh_server):
    ch, s = connect(fresh_server)
    with ch:
        create(s, "durable", 2)
    acked: list[tuple[int, int, bytes]] = []
    enough = threading.Event()
    stop = threading.Event()

    def producer():
        ch, s = connect(fresh_server)
        with ch:
            i = 0
            while not stop.is_set():
                part = i % 2
                data = batch(*[b"record-%d-%d" % (i, j) for j in range(1 + i % 4)])
                try:
                    r = produce(s, "durable", data, partition=part, acks=-1)
                except grpc.RpcError:
                    return
                assert r.error_code == 0, r.error_message
                acked.append((part, r.base_offset, data))
                if len(acked) >= 60:
                    enough.set()
                i += 1

    t = threading.Thread(target=producer, daemon=True)
    t.start()
    assert enough.wait(WAIT_S * 2)
    fresh_server.kill()           # while the producer keeps sending
    stop.set()
    t.join(WAIT_S)
    assert not t.is_alive()
    fresh_server.start()
    ch, s = connect(fresh_server)
    with ch:
        logs = {p: fetch(s, "durable", partition=p).records for p in (0, 1)}
    batches = {p: {h.base_offset: bytes(x) for h, x in iter_batches(logs[p])} for p in (0, 1)}
    for part, offset, data in acked:
        assert batches[part].get(offset) == stored(data, offset), (part, offset)
