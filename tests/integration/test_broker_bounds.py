"""The broker's bounds at the edge, each tried as an attacker would with one request against a real
server process: the request fails with Kafka's error, the node keeps serving, a topic's records
are the same before and after, and the server's memory stays bounded where the attack was about
memory (a partition bomb, a gzip bomb).

Memory is the process's peak resident size (VmHWM) before and after: a bound on growth, generous
beside what the attack would cost unbounded (tens of GiB for the partitions, 60-120 MiB for the
gzip batch)."""
from __future__ import annotations

import uuid

import grpc
import pytest

from dcli.v1 import broker_pb2 as pb
from dcli.v1 import broker_pb2_grpc as pb_grpc
from dcli.wire.records import Compression, Record, build_batch, decode_records, iter_batches
from tests.conftest import ServerProcess

WAIT_S = 30                 # a bound for what should come at once; never a measurement
INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, MESSAGE_TOO_LARGE = 37, 38, 10
INVALID_GROUP_ID, INVALID_REQUEST, UNKNOWN_TOPIC_OR_PARTITION = 24, 42, 3
GROUP_MAX_SIZE_REACHED, POLICY_VIOLATION = 81, 44
BOMB_BYTES = 60 << 20       # the records of a gzip batch of about 61 KB
GROWTH_BOUND_KIB = 40 << 10
MAX_WAIT_MS = 500           # dcli.fetch.max.wait.ms of the server below
FETCH_MAX_BYTES = 1 << 20   # fetch.max.bytes of the server below

ARGS = ("--group-initial-rebalance-delay-ms", "0",
        "--override", "group.max.size=2",
        "--override", f"dcli.fetch.max.wait.ms={MAX_WAIT_MS}",
        "--override", f"fetch.max.bytes={FETCH_MAX_BYTES}")


@pytest.fixture(scope="module")
def bounded(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("bounds") / "data", *ARGS).start()
    yield srv
    srv.kill()


@pytest.fixture
def stub(bounded):
    with grpc.insecure_channel(bounded.address, options=[("grpc.max_send_message_length", 64 << 20),
                                                         ("grpc.max_receive_message_length", 64 << 20)]) as ch:
        yield pb_grpc.BrokerStub(ch)


def peak_kib(srv: ServerProcess) -> int:
    with open(f"/proc/{srv.proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def new_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def create(stub, name, partitions=1, rf=1, validate_only=False, **configs) -> pb.TopicResult:
    resp = stub.CreateTopics(pb.CreateTopicsRequest(validate_only=validate_only, topics=[pb.CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=rf, configs=configs)]), timeout=WAIT_S)
    return resp.topics[0]


def produce(stub, topic, records: bytes) -> pb.PartitionProduceResult:
    resp = stub.Produce(pb.ProduceRequest(acks=-1, timeout_ms=10000, partitions=[
        pb.PartitionRecords(topic=topic, partition=0, records=records)]), timeout=WAIT_S)
    return resp.partitions[0]


def fetch(stub, topic, *, max_wait_ms=0, min_bytes=1, max_bytes=32 << 20, timeout=WAIT_S) -> pb.FetchedPartition:
    resp = stub.Fetch(pb.FetchRequest(max_wait_ms=max_wait_ms, min_bytes=min_bytes, max_bytes=max_bytes,
                                      partitions=[pb.FetchPartition(topic=topic, partition=0, fetch_offset=0,
                                                                    partition_max_bytes=max_bytes)]),
                      timeout=timeout)
    return resp.partitions[0]


def records_of(stub, topic) -> list[tuple[int, bytes | None, bytes | None]]:
    data = fetch(stub, topic).records
    return [(r.offset, r.key, r.value) for _, b in iter_batches(data) for r in decode_records(b)]


@pytest.fixture
def witness(stub):
    """A topic with three records, to check they are the same after each attack."""
    name = new_name()
    assert create(stub, name).error_code == 0
    assert produce(stub, name, build_batch([Record(b"k%d" % i, b"v%d" % i, (), 1000 + i)
                                             for i in range(3)])).error_code == 0
    before = records_of(stub, name)
    assert len(before) == 3
    yield name
    assert records_of(stub, name) == before
    assert create(stub, new_name()).error_code == 0           # and the node still serves


def bomb(size: int = BOMB_BYTES) -> bytes:
    return build_batch([Record(b"k", bytes(size), (), 1000)], compression=Compression.GZIP)


# -- topics and partitions -------------------------------------------------------------------------

def test_a_partition_bomb_is_refused_before_any_replica_list_is_built(bounded, stub, witness):
    before = peak_kib(bounded)
    result = create(stub, new_name(), partitions=2**31 - 1)
    assert result.error_code == INVALID_PARTITIONS
    assert "Unable to add 2147483647 partition(s)" in result.error_message
    result = create(stub, new_name(), partitions=1, rf=2**31 - 1)
    assert result.error_code == INVALID_REPLICATION_FACTOR
    grown = stub.CreatePartitions(pb.CreatePartitionsRequest(topic=witness, count=2**31 - 1), timeout=WAIT_S)
    assert grown.result.error_code == INVALID_PARTITIONS
    assert peak_kib(bounded) - before < GROWTH_BOUND_KIB
    listed = stub.Metadata(pb.MetadataRequest(topics=[witness]), timeout=WAIT_S).topics[0]
    assert len(listed.partitions) == 1


def test_the_partitions_of_one_request_are_counted_together(stub, witness):
    """Five topics of 1000 partitions in one request: each alone fits dcli.max.partitions
    (4096), all together do not; the fifth is refused even when nothing is created."""
    names = [new_name() for _ in range(5)]
    resp = stub.CreateTopics(pb.CreateTopicsRequest(validate_only=True, topics=[
        pb.CreatableTopic(name=n, num_partitions=1000, replication_factor=1) for n in names]), timeout=WAIT_S)
    codes = [t.error_code for t in resp.topics]
    assert codes == [0, 0, 0, 0, INVALID_PARTITIONS]
    assert "more in this request" in resp.topics[4].error_message


def test_a_request_naming_more_topics_than_can_exist_is_refused_whole(stub, witness):
    many = [pb.CreatableTopic(name=f"x{i}", num_partitions=1, replication_factor=1) for i in range(5000)]
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateTopics(pb.CreateTopicsRequest(topics=many), timeout=WAIT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "CreateTopics names 5000 topics; at most 4096" in caught.value.details()
    assert not [t for t in stub.Metadata(pb.MetadataRequest(all_topics=True), timeout=WAIT_S).topics
                if t.name.startswith("x")]


# -- compressed batches ---------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["delete", "compact"])
def test_a_gzip_bomb_is_refused_and_never_inflated_whole(bounded, stub, witness, policy):
    """60 MiB of records in a 61 KB gzip batch: within max.message.bytes as sent, far past it
    once decompressed. Refused with MESSAGE_TOO_LARGE; the server inflated at most the limit
    (a compacted topic, which looks at every key, too)."""
    topic = new_name()
    assert create(stub, topic, **{"cleanup.policy": policy}).error_code == 0
    data = bomb()
    assert len(data) < 100_000
    before = peak_kib(bounded)
    result = produce(stub, topic, data)
    assert result.error_code == MESSAGE_TOO_LARGE
    assert "once decompressed" in result.error_message and "max.message.bytes (1048588)" in result.error_message
    assert peak_kib(bounded) - before < GROWTH_BOUND_KIB
    assert fetch(stub, topic).records == b""                   # nothing was appended
    offsets = stub.ListOffsets(pb.ListOffsetsRequest(partitions=[
        pb.ListOffsetsPartition(topic=topic, partition=0, timestamp=0)]), timeout=WAIT_S)
    assert offsets.partitions[0].offset == -1


def test_a_compressed_batch_within_the_limit_is_taken(stub, witness):
    topic = new_name()
    assert create(stub, topic).error_code == 0
    assert produce(stub, topic, bomb(500_000)).error_code == 0
    [(offset, key, value)] = records_of(stub, topic)
    assert (offset, key, len(value)) == (0, b"k", 500_000)


# -- fetch ----------------------------------------------------------------------------------------

def test_a_long_poll_waits_at_most_the_brokers_bound(stub, witness):
    """max_wait_ms of 2^31-1 (24 days) and more bytes than will ever come: the answer comes
    after dcli.fetch.max.wait.ms, within the call's deadline, empty."""
    topic = new_name()
    assert create(stub, topic).error_code == 0
    got = fetch(stub, topic, max_wait_ms=2**31 - 1, min_bytes=2**31 - 1, timeout=WAIT_S)
    assert got.error_code == 0 and got.records == b""
    with pytest.raises(grpc.RpcError) as caught:
        fetch(stub, topic, max_wait_ms=-1)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_fetch_answers_at_most_fetch_max_bytes(stub, witness):
    topic = new_name()
    assert create(stub, topic).error_code == 0
    for _ in range(4):
        assert produce(stub, topic, build_batch([Record(b"k", b"v" * 400_000, (), 1)])).error_code == 0
    got = fetch(stub, topic, max_bytes=2**31 - 1)
    batches = list(iter_batches(got.records))
    assert 1 <= len(batches) <= 3 and len(got.records) <= FETCH_MAX_BYTES


# -- consumer groups ------------------------------------------------------------------------------

def join(stub, group, client="c", **kwargs):
    return stub.JoinGroup.future(pb.JoinGroupRequest(
        group_id=group, session_timeout_ms=10_000, rebalance_timeout_ms=10_000, client_id=client,
        protocol_type="consumer", protocols=[pb.JoinGroupProtocol(name="range", metadata=b"")], **kwargs),
        timeout=WAIT_S)


def listed_groups(stub) -> list[str]:
    return [g.group_id for g in stub.ListGroups(pb.ListGroupsRequest(), timeout=WAIT_S).groups]


def test_a_group_id_too_long_is_refused_and_leaves_no_group(bounded, stub, witness):
    groups_before = listed_groups(stub)
    resp = stub.OffsetCommit(pb.OffsetCommitRequest(group_id="g" * 40_000, generation_id=-1, partitions=[
        pb.OffsetCommitPartition(topic=witness, partition=0, offset=1)]), timeout=WAIT_S)
    assert [p.error_code for p in resp.partitions] == [INVALID_GROUP_ID]
    assert "40000 characters exceeds the limit of 255 (dcli.max.id.length)" in resp.partitions[0].error_message
    described = stub.DescribeGroups(pb.DescribeGroupsRequest(group_ids=["g" * 300]), timeout=WAIT_S)
    assert described.groups[0].error_code == INVALID_GROUP_ID
    fetched = stub.OffsetFetch(pb.OffsetFetchRequest(group_id="g" * 40_000), timeout=WAIT_S)
    assert fetched.error_code == INVALID_GROUP_ID
    assert listed_groups(stub) == groups_before
    assert "Traceback" not in bounded.log()


def test_ids_too_long_are_refused(bounded, stub, witness):
    group = f"g-{uuid.uuid4().hex[:8]}"
    answer = join(stub, group, client="c" * 300).result()
    assert answer.error_code == INVALID_REQUEST and "client id of 300 characters" in answer.error_message
    answer = join(stub, group, member_id="m" * 400).result()
    assert answer.error_code == INVALID_REQUEST and "member id of 400 characters" in answer.error_message
    assert group not in listed_groups(stub)
    assert "Traceback" not in bounded.log()


def test_offsets_are_kept_only_for_partitions_that_exist(bounded, stub, witness):
    """Commits under made-up names (a/../b would be a path in the tree) or partitions are
    UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers them; a hundred thousand of them in one request
    keep nothing, and the partition that exists in the same request is committed."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    made_up = [pb.OffsetCommitPartition(topic=f"fake-{i}", partition=0, offset=1) for i in range(100_000)]
    resp = stub.OffsetCommit(pb.OffsetCommitRequest(group_id=group, generation_id=-1, partitions=[
        pb.OffsetCommitPartition(topic="a/../b", partition=0, offset=1),
        pb.OffsetCommitPartition(topic=witness, partition=7, offset=1), *made_up]), timeout=WAIT_S)
    assert {p.error_code for p in resp.partitions} == {UNKNOWN_TOPIC_OR_PARTITION}
    assert group not in listed_groups(stub)                     # nothing accepted: no group
    resp = stub.OffsetCommit(pb.OffsetCommitRequest(group_id=group, generation_id=-1, partitions=[
        pb.OffsetCommitPartition(topic="fake", partition=0, offset=1),
        pb.OffsetCommitPartition(topic=witness, partition=0, offset=2)]), timeout=WAIT_S)
    assert [p.error_code for p in resp.partitions] == [UNKNOWN_TOPIC_OR_PARTITION, 0]
    fetched = stub.OffsetFetch(pb.OffsetFetchRequest(group_id=group), timeout=WAIT_S)
    assert [(c.topic, c.partition, c.offset) for c in fetched.partitions] == [(witness, 0, 2)]
    assert "Traceback" not in bounded.log()


def test_a_group_holds_at_most_group_max_size_members(stub, witness):
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = join(stub, group, client="a").result()
    assert first.error_code == 0
    second = join(stub, group, client="b")           # waits for the first member to rejoin
    try:
        third = join(stub, group, client="c").result()
        assert third.error_code == GROUP_MAX_SIZE_REACHED
        assert third.error_message == "The consumer group has reached its max size."
    finally:
        second.cancel()


def test_new_groups_past_max_groups_are_refused(tmp_path):
    srv = ServerProcess(tmp_path / "data", "--override", "dcli.max.groups=2").start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.BrokerStub(ch)
            assert create(stub, "chat").error_code == 0

            def commit(group):
                return stub.OffsetCommit(pb.OffsetCommitRequest(group_id=group, generation_id=-1, partitions=[
                    pb.OffsetCommitPartition(topic="chat", partition=0, offset=1)]), timeout=WAIT_S).partitions[0]

            assert commit("g1").error_code == 0 and commit("g2").error_code == 0
            refused = commit("g3")
            assert refused.error_code == POLICY_VIOLATION and "dcli.max.groups" in refused.error_message
            assert commit("g1").error_code == 0                  # a known group goes on
            assert sorted(listed_groups(stub)) == ["g1", "g2"]
    finally:
        srv.kill()
