"""The broker's bounds as pure checks: requests naming too many topics or groups, the partition
budget counted across one request, ids past dcli.max.id.length, offsets under names that are not
topic names, group.max.size and dcli.max.groups in the coordinator, the settings themselves, and
gzip batches inflated only up to a bound."""
from __future__ import annotations

import gzip
import resource

import pytest

from dcli.wire.errors import (CorruptRecordError, InvalidConfigurationError, InvalidGroupIdError,
                              InvalidPartitionsError, InvalidReplicationFactorError, InvalidRequestError,
                              RecordTooLargeError)
from dcli.wire.records import (RECORD_BATCH_OVERHEAD, Compression, Record, _gunzip, build_batch,
                               check_decompressed, decode_records, has_null_key)
from dcli_server.broker.cluster_meta import TopicAssignment
from dcli_server.broker.config import BrokerConfig
from dcli_server.broker.groups import GroupConfig
from dcli_server.broker.limits import (check_groups_in_request, check_partition_budget, check_topics_in_request,
                                       group_request_error, offset_topic_error)
from dcli_server.broker.offsets import OffsetCommit
from dcli_server.broker.partition import check_decompressed_sizes, split_batches
from dcli_server.broker.topics import plan_partitions, plan_topic
from dcli_server.storage.log_config import LogConfig
from tests.unit.test_group_coordinator import Groups, MemoryOffsets

GROUP_MAX_SIZE_REACHED, POLICY_VIOLATION, INVALID_TOPIC = 81, 44, 17
SMALL = BrokerConfig(max_partitions=10, max_groups=3, max_id_length=8)


def _topics(**sizes: int) -> dict[str, TopicAssignment]:
    return {name: TopicAssignment(name, "id", tuple((1,) for _ in range(n))) for name, n in sizes.items()}


# -- topics and partitions -------------------------------------------------------------------------

def test_a_request_naming_more_topics_than_the_broker_can_hold_is_refused_whole():
    check_topics_in_request(10, SMALL, "CreateTopics")
    with pytest.raises(InvalidRequestError, match=r"CreateTopics names 11 topics; at most 10 .*dcli.max.partitions"):
        check_topics_in_request(11, SMALL, "CreateTopics")
    check_groups_in_request(3, SMALL, "DeleteGroups")
    with pytest.raises(InvalidRequestError, match="at most 3 .*dcli.max.groups"):
        check_groups_in_request(4, SMALL, "DeleteGroups")


def test_the_partition_budget_counts_the_earlier_topics_of_the_same_request():
    existing = _topics(a=4)
    check_partition_budget(6, existing, SMALL)
    with pytest.raises(InvalidPartitionsError, match="holds 4 of at most 10"):
        check_partition_budget(7, existing, SMALL)
    with pytest.raises(InvalidPartitionsError, match="holds 4 and 3 more in this request of at most 10"):
        check_partition_budget(4, existing, SMALL, pending=3)
    with pytest.raises(InvalidPartitionsError, match="Unable to add 2147483647"):
        check_partition_budget(2**31 - 1, {}, BrokerConfig())      # no replica list is built first


def test_planning_a_topic_or_partitions_past_the_budget_builds_no_replica_list():
    """2^31-1 partitions: refused by the budget before assign_replicas would build a list of
    that many (the check after it would never be reached)."""
    with pytest.raises(InvalidPartitionsError, match="Unable to add 2147483647"):
        plan_topic("t", 2**31 - 1, 1, {}, brokers=[1], config=BrokerConfig(), existing={})
    with pytest.raises(InvalidReplicationFactorError):
        plan_topic("t", 2**31 - 1, 2**31 - 1, {}, brokers=[1], config=BrokerConfig(), existing={})
    grown = plan_partitions(_topics(a=4)["a"], 10, brokers=[1], config=SMALL, existing=_topics(a=4))
    assert grown.partitions == 10
    with pytest.raises(InvalidPartitionsError, match="Unable to add 2147483643"):
        plan_partitions(_topics(a=4)["a"], 2**31 - 1, brokers=[1], config=SMALL, existing=_topics(a=4))


# -- ids ------------------------------------------------------------------------------------------

def test_ids_past_the_limit_are_refused_with_kafkas_errors():
    assert group_request_error(SMALL, "g" * 8, member_id="m" * 72, client_id="c" * 8) is None
    e = group_request_error(SMALL, "g" * 9)
    assert isinstance(e, InvalidGroupIdError) and e.kafka_code == 24
    assert str(e) == "The group id of 9 characters exceeds the limit of 8 (dcli.max.id.length)."
    for ids in ({"member_id": "m" * 73}, {"client_id": "c" * 9}, {"client_host": "h" * 9},
                {"protocol_type": "t" * 9}, {"protocols": ["range", "p" * 9]}):
        e = group_request_error(SMALL, "g", **ids)
        assert isinstance(e, InvalidRequestError) and e.kafka_code == 42, ids
    e = group_request_error(BrokerConfig(), "g" * 40_000)
    assert "40000 characters exceeds the limit of 255" in str(e)


def test_an_offset_under_a_name_that_is_not_a_topic_name_is_refused():
    assert offset_topic_error("chat") is None
    assert offset_topic_error("a/b").kafka_code == INVALID_TOPIC
    assert offset_topic_error("t" * 250).kafka_code == INVALID_TOPIC


# -- groups ---------------------------------------------------------------------------------------

def test_a_group_holds_at_most_group_max_size_members_counting_those_asked_to_rejoin():
    g = Groups(GroupConfig(initial_rebalance_delay_ms=0, group_max_size=2))
    first, second = g.join("a"), g.join("b")
    assert g.replies[first].error_code == 0
    third = g.join("c")
    assert g.replies[third].error_code == GROUP_MAX_SIZE_REACHED
    assert g.replies[third].error_message == "The consumer group has reached its max size."
    assert not g.answered(second) or g.replies[second].error_code == 0
    other = Groups(GroupConfig(initial_rebalance_delay_ms=0, group_max_size=1))
    pending = other.join("a", require_known_member_id=True)              # KIP-394: a member-to-be
    assert other.replies[pending].error_code == 79
    assert other.replies[other.join("b", require_known_member_id=True)].error_code == GROUP_MAX_SIZE_REACHED


def test_a_new_group_past_max_groups_is_refused_and_a_refused_commit_leaves_no_group():
    store = MemoryOffsets()
    g = Groups(GroupConfig(initial_rebalance_delay_ms=0, max_groups=2), store)
    g.join("a", group="g1")
    [ok] = g.c.commit_offsets(0, "g2", -1, "", [OffsetCommit("chat", 0, 5)])
    assert ok.error_code == 0
    refused = g.join("a", group="g3")
    assert g.replies[refused].error_code == POLICY_VIOLATION
    assert "at most 2 (dcli.max.groups); group 'g3' cannot be created" in g.replies[refused].error_message
    [full] = g.c.commit_offsets(0, "g4", -1, "", [OffsetCommit("chat", 0, 5)])
    assert full.error_code == POLICY_VIOLATION
    assert sorted(x.group_id for x in g.c.list_groups()) == ["g1", "g2"]
    g.join("b", group="g1")                                             # an existing group still takes members


def test_a_commit_with_nothing_accepted_does_not_create_a_phantom_group():
    store = MemoryOffsets()
    g = Groups(GroupConfig(initial_rebalance_delay_ms=0), store)
    results = g.c.commit_offsets(0, "ghost", -1, "", [OffsetCommit("a/b", 0, 1), OffsetCommit("t" * 300, 0, 1)])
    assert [r.error_code for r in results] == [INVALID_TOPIC, INVALID_TOPIC]
    assert g.c.list_groups() == [] and store.fetch("ghost") == {}


# -- settings -------------------------------------------------------------------------------------

def test_the_bounds_are_settings_with_kafkas_names_where_kafka_has_them():
    config, unknown = BrokerConfig.from_properties({
        "group.max.size": "5", "dcli.max.groups": "7", "dcli.max.id.length": "64",
        "fetch.max.bytes": "1048576", "dcli.fetch.max.wait.ms": "1000"})
    assert unknown == []
    assert (config.group_max_size, config.max_groups, config.max_id_length, config.fetch_max_bytes,
            config.fetch_max_wait_ms) == (5, 7, 64, 1 << 20, 1000)
    with pytest.raises(InvalidConfigurationError, match="fetch.max.bytes: Value must be at least 1024"):
        BrokerConfig.from_properties({"fetch.max.bytes": "10"})
    with pytest.raises(InvalidConfigurationError, match="fetch.max.bytes: Value must be no more than"):
        BrokerConfig.from_properties({"fetch.max.bytes": str(1 << 30)})
    with pytest.raises(InvalidConfigurationError, match="group.max.size: Value must be at least 1"):
        BrokerConfig.from_properties({"group.max.size": "0"})
    names = {name for name, _, _ in BrokerConfig().entries()}
    assert {"group.max.size", "dcli.max.groups", "fetch.max.bytes", "dcli.fetch.max.wait.ms"} <= names


# -- compressed batches ---------------------------------------------------------------------------

def _bomb(size: int) -> bytes:
    return build_batch([Record(key=b"k", value=bytes(size), timestamp=1)], compression=Compression.GZIP)


def test_a_gzip_bomb_is_refused_after_inflating_no_more_than_the_limit():
    bomb = _bomb(60 << 20)
    assert len(bomb) < 100_000                                   # 60 MiB of records in ~61 KB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(RecordTooLargeError, match=r"in the append to t-0 is more than 1048588 bytes once "
                                                  r"decompressed.*max.message.bytes \(1048588\)"):
        check_decompressed(bomb, 1048588, " in the append to t-0")
    with pytest.raises(RecordTooLargeError):
        decode_records(bomb, max_bytes=1048588)
    with pytest.raises(RecordTooLargeError):
        has_null_key(bomb, max_bytes=1048588)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 20 * 1024                                 # never the 60 MiB


def test_the_limit_is_the_whole_batch_once_decompressed():
    batch = _bomb(10_000)
    size = check_decompressed(batch, 1 << 20)
    assert size > 10_000 + RECORD_BATCH_OVERHEAD
    assert check_decompressed(batch, size) == size
    with pytest.raises(RecordTooLargeError):
        check_decompressed(batch, size - 1)
    assert decode_records(batch, max_bytes=size)[0].value == bytes(10_000)
    plain = build_batch([Record(key=b"k", value=b"v", timestamp=1)])
    assert check_decompressed(plain, len(plain)) == len(plain)


def test_the_partition_check_refuses_only_compressed_batches_past_max_message_bytes():
    config = LogConfig(max_message_bytes=5000)
    check_decompressed_sizes(split_batches(_bomb(4000), "t-0", config), "t-0", config)
    with pytest.raises(RecordTooLargeError, match="in the append to t-0"):
        check_decompressed_sizes(split_batches(_bomb(6000), "t-0", config), "t-0", config)


def test_bounded_inflating_reads_what_gzip_reads_and_refuses_what_it_refuses():
    body = b"hello" * 10
    two_members = gzip.compress(body[:20]) + gzip.compress(body[20:]) + b"\0\0"
    assert _gunzip(two_members, None)[0] == body
    assert _gunzip(two_members, len(body)) == (body, len(body))
    assert _gunzip(two_members, len(body), keep=False) == (b"", len(body))
    with pytest.raises(RecordTooLargeError):
        _gunzip(two_members, len(body) - 1)
    with pytest.raises(CorruptRecordError, match="ended before the end-of-stream marker"):
        _gunzip(gzip.compress(body)[:-5], None)
    with pytest.raises(CorruptRecordError, match="gzip stream is corrupt"):
        _gunzip(b"not gzip at all", None)
