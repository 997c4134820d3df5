"""Topic metadata: Kafka's checks and messages, replica placement, the partition directories and
what happens to stray ones; the broker's settings and server.properties."""
from __future__ import annotations

import base64

import pytest

from dcli.wire.errors import (
    InvalidConfigurationError, InvalidPartitionsError, InvalidReplicaAssignmentError,
    InvalidReplicationFactorError, InvalidRequestError, InvalidTopicError, TopicExistsError,
)
from dcli_server.broker.assignment import assign_replicas
from dcli_server.broker.config import BrokerConfig, load_server_properties, parse_properties, validate_topic_configs
from dcli_server.broker.partition_dirs import PartitionDirs
from dcli_server.broker.topics import new_topic_id, plan_partitions, plan_topic

CONFIG = BrokerConfig(broker_id=1)


def plan(name="chat", partitions=1, rf=1, assignments=None, existing=None, brokers=(1,), config=CONFIG):
    return plan_topic(name, partitions, rf, assignments or {}, brokers=list(brokers), config=config,
                      existing=existing or {})


# -- ids and placement ----------------------------------------------------------------------------


def test_topic_ids_are_kafkas_uuid_strings():
    ids = {new_topic_id() for _ in range(200)}
    assert len(ids) == 200
    for text in ids:
        assert len(text) == 22 and not text.startswith("-")
        assert len(base64.urlsafe_b64decode(text + "==")) == 16


def test_replica_placement_follows_kafkas_rack_unaware_rule():
    # kafka.md 1.2: a 3-partition, RF-3 topic on brokers 1,2,3
    assert assign_replicas(3, 3, [1, 2, 3]) == [(1, 2, 3), (2, 3, 1), (3, 1, 2)]
    assert assign_replicas(2, 1, [1]) == [(1,), (1,)]
    # the shift grows every len(brokers) partitions
    assert assign_replicas(4, 2, [1, 2, 3])[3] == (1, 3)


# -- planning: Kafka's rules and words ----------------------------------------------------------


def test_defaults_come_from_the_broker():
    info = plan(partitions=-1, rf=-1, config=BrokerConfig(broker_id=1, num_partitions=4))
    assert info.configs == {}
    assert info.partitions == 4 and info.replication_factor == 1
    assert info.replicas == ((1,),) * 4


def test_an_existing_topic_is_refused_in_kafkas_words():
    existing = {"chat": plan()}
    with pytest.raises(TopicExistsError) as e:
        plan(existing=existing)
    assert e.value.kafka_code == 36 and e.value.message == "Topic 'chat' already exists."


def test_names_that_collide_in_metrics_are_refused():
    with pytest.raises(InvalidTopicError) as e:
        plan("a.b", existing={"a_b": plan("a_b")})
    assert e.value.message == "Topic 'a.b' collides with existing topic: a_b"


@pytest.mark.parametrize("count", [0, -2])
def test_partition_counts_must_be_positive(count):
    with pytest.raises(InvalidPartitionsError) as e:
        plan(partitions=count)
    assert e.value.kafka_code == 37
    assert e.value.message == "Number of partitions must be larger than 0."


def test_replication_factor_must_be_positive():
    with pytest.raises(InvalidReplicationFactorError) as e:
        plan(rf=0)
    assert e.value.kafka_code == 38 and e.value.message == "Replication factor must be larger than 0."


def test_replication_beyond_the_live_brokers_uses_krafts_words():
    with pytest.raises(InvalidReplicationFactorError) as e:
        plan(rf=3)
    assert e.value.message == (
        "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot "
        "be reached because only 1 broker(s) are registered.")


@pytest.mark.parametrize("name", ["../x", "a/b", "x" * 250, "", ".", "..", "bad topic!"])
def test_bad_names_are_refused(name):
    with pytest.raises(InvalidTopicError) as e:
        plan(name)
    assert e.value.kafka_code == 17 and e.value.message.startswith("Topic name is invalid: ")


def test_explicit_assignments_are_checked():
    info = plan(partitions=-1, rf=-1, assignments={0: [1], 1: [1]})
    assert info.replicas == ((1,), (1,))
    with pytest.raises(InvalidReplicaAssignmentError, match="broker 2, but no broker"):
        plan(partitions=-1, rf=-1, assignments={0: [2]})
    with pytest.raises(InvalidReplicaAssignmentError, match="consecutive"):
        plan(partitions=-1, rf=-1, assignments={1: [1]})
    with pytest.raises(InvalidReplicaAssignmentError, match="more than once"):
        plan(partitions=-1, rf=-1, assignments={0: [1, 1]}, brokers=(1, 2))
    with pytest.raises(InvalidRequestError):
        plan(partitions=2, rf=-1, assignments={0: [1]})


def test_topic_configs_are_checked_by_name_and_value():
    def check(configs):
        return validate_topic_configs(configs, CONFIG)
    assert check({"cleanup.policy": "compact", "min.insync.replicas": "1"}) == {
        "cleanup.policy": "compact", "min.insync.replicas": "1"}
    with pytest.raises(InvalidConfigurationError) as e:
        check({"no.such.config": "1"})
    assert e.value.kafka_code == 40 and e.value.message == "Unknown topic config name: no.such.config"
    with pytest.raises(InvalidConfigurationError, match="Invalid value abc for configuration segment.bytes"):
        check({"segment.bytes": "abc"})
    with pytest.raises(InvalidConfigurationError, match="min.insync.replicas: Value must be at least 1"):
        check({"min.insync.replicas": "0"})


def test_the_broker_caps_its_partitions():
    config = BrokerConfig(broker_id=1, max_partitions=4)
    existing = {"a": plan("a", 3, config=config)}
    with pytest.raises(InvalidPartitionsError, match="dcli.max.partitions"):
        plan("b", 2, existing=existing, config=config)


def test_partitions_only_grow():
    info = plan(partitions=3)
    grown = plan_partitions(info, 5, brokers=[1], config=CONFIG, existing={"chat": info})
    assert grown.partitions == 5 and grown.topic_id == info.topic_id
    with pytest.raises(InvalidPartitionsError) as e:
        plan_partitions(info, 2, brokers=[1], config=CONFIG, existing={"chat": info})
    assert e.value.message == "The topic chat currently has 3 partition(s); 2 would not be an increase."
    with pytest.raises(InvalidPartitionsError, match=r"^Topic already has 3 partition\(s\).$"):
        plan_partitions(info, 3, brokers=[1], config=CONFIG, existing={"chat": info})


# -- partition directories -------------------------------------------------------------------------


def test_partition_directories_carry_their_topic_id(tmp_path):
    dirs = PartitionDirs(tmp_path)
    topic_id = new_topic_id()
    path = dirs.ensure("chat", topic_id, 1)
    assert path == tmp_path / "chat-1"
    assert f"topic_id: {topic_id}" in (path / "partition.metadata").read_text()
    assert dirs.found() == {"chat": [1]}
    (path / "00000000000000000000.log").write_bytes(b"data")
    assert dirs.ensure("chat", topic_id, 1) == path and (path / "00000000000000000000.log").exists()
    newer = new_topic_id()                          # an older topic's directory goes, data and all
    assert dirs.ensure("chat", newer, 1) == path and not (path / "00000000000000000000.log").exists()
    assert f"topic_id: {newer}" in (path / "partition.metadata").read_text()
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*-delete"))


def test_deleting_a_topic_removes_its_directories(tmp_path):
    dirs = PartitionDirs(tmp_path)
    for p in range(2):
        dirs.ensure("chat", new_topic_id(), p)
    (tmp_path / "chat-1" / "00000000000000000000.log").write_bytes(b"data")
    dirs.ensure("other", new_topic_id(), 0)
    dirs.delete("chat")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-0"]


def test_what_a_crash_or_a_deletion_elsewhere_leaves_is_removed(tmp_path):
    dirs = PartitionDirs(tmp_path)
    chat = new_topic_id()
    dirs.ensure("chat", chat, 0)
    dirs.ensure("gone", new_topic_id(), 0)          # deleted in the tree while this node was down
    dirs.ensure("again", new_topic_id(), 0)         # an older topic of a name the tree has again
    dirs.ensure("open", new_topic_id(), 0)          # open here: the broker drops it itself
    (tmp_path / "old-0.0123456789abcdef-delete").mkdir()    # a delete cut short after the rename
    dirs = PartitionDirs(tmp_path)
    assert not (tmp_path / "old-0.0123456789abcdef-delete").exists()
    removed = dirs.remove_strays({"chat": chat, "again": new_topic_id()}, keep=["open"])
    assert sorted(removed)[0].startswith("again-0.") and len(removed) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat-0", "open-0"]


# -- settings -------------------------------------------------------------------------------------


def test_server_properties_follow_java_properties_rules():
    text = "\n".join([
        "# comment", "! also a comment", "", "broker.id=2", "num.partitions : 3",
        "log.dirs /tmp/a,\\", "    /tmp/b", "weird\\ key=va\\tlue", "auto.create.topics.enable=false",
        "log.retention.hours=168", "log.retention.hours=24",
    ])
    props = parse_properties(text)
    assert props["broker.id"] == "2" and props["num.partitions"] == "3"
    assert props["log.dirs"] == "/tmp/a,/tmp/b" and props["weird key"] == "va\tlue"
    assert props["log.retention.hours"] == "24"
    config, unknown = load_server_properties(text)
    assert unknown == ["weird key"]
    assert (config.broker_id, config.num_partitions, config.auto_create_topics_enable) == (2, 3, False)
    assert config.log_directories == ["/tmp/a", "/tmp/b"]
    assert config.log_retention_ms == 24 * 3600 * 1000


def test_kafkas_defaults_and_retention_precedence():
    c = BrokerConfig()
    assert (c.num_partitions, c.default_replication_factor, c.min_insync_replicas) == (1, 1, 1)
    assert c.auto_create_topics_enable and c.log_retention_ms == 168 * 3600 * 1000
    assert c.log_segment_bytes == 1073741824 and c.message_max_bytes == 1048588
    assert c.log_retention_check_interval_ms == 300000 and c.log_retention_bytes == -1
    c2, _ = BrokerConfig.from_properties({"log.retention.minutes": "2", "log.retention.hours": "1"})
    assert c2.log_retention_ms == 120000
    c3, _ = BrokerConfig.from_properties({"log.retention.ms": "5", "log.retention.minutes": "2"})
    assert c3.log_retention_ms == 5 and c3.log_config().retention_ms == 5


@pytest.mark.parametrize("line, message", [
    ("num.partitions=abc", "Invalid value abc for configuration num.partitions: Not a number of type INT"),
    ("num.partitions=0", "Invalid value 0 for configuration num.partitions: Value must be at least 1"),
    ("auto.create.topics.enable=yes",
     "Invalid value yes for configuration auto.create.topics.enable: Expected value to be either true or false"),
    ("log.cleanup.policy=shred",
     "Invalid value shred for configuration log.cleanup.policy: String must be one of: compact, delete"),
])
def test_bad_values_give_one_line_errors(line, message):
    with pytest.raises(InvalidConfigurationError) as e:
        load_server_properties(line)
    assert e.value.message == message and "\n" not in str(e.value)


def test_explicit_broker_settings_count_as_non_default_for_topics():
    config, _ = BrokerConfig.from_properties({"log.segment.bytes": "1048576"})
    assert config.topic_default_is_explicit("segment.bytes")
    assert not config.topic_default_is_explicit("retention.ms")
    assert config.log_config({"segment.bytes": "2097152"}).segment_bytes == 2097152
    assert config.log_config().segment_bytes == 1048576
