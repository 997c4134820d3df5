"""Topic metadata: Kafka's checks and messages, replica placement, the durable store and what it
does with stray partition directories; the broker's settings and server.properties."""
from __future__ import annotations

import base64
import json

import pytest

from dcli.wire.errors import InvalidConfigurationError, InvalidTopicError
from dcli_server.broker.config import BrokerConfig, load_server_properties, parse_properties
from dcli.wire.errors import (
    InvalidPartitionsError, InvalidReplicaAssignmentError, InvalidReplicationFactorError,
    InvalidRequestError, TopicExistsError, UnknownTopicOrPartitionError,
)
from dcli_server.broker.topics import (
    BrokerStateError, TopicStore, assign_replicas, new_topic_id, plan_partitions, plan_topic,
)

CONFIG = BrokerConfig(broker_id=1)


def plan(name="chat", partitions=1, rf=1, configs=None, assignments=None, existing=None,
         brokers=(1,), config=CONFIG):
    return plan_topic(name, partitions, rf, configs or {}, assignments or {}, brokers=list(brokers),
                      config=config, existing=existing or {})


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
    info = plan(configs={"cleanup.policy": "compact", "min.insync.replicas": "1"})
    assert dict(info.configs) == {"cleanup.policy": "compact", "min.insync.replicas": "1"}
    with pytest.raises(InvalidConfigurationError) as e:
        plan(configs={"no.such.config": "1"})
    assert e.value.kafka_code == 40 and e.value.message == "Unknown topic config name: no.such.config"
    with pytest.raises(InvalidConfigurationError, match="Invalid value abc for configuration segment.bytes"):
        plan(configs={"segment.bytes": "abc"})
    with pytest.raises(InvalidConfigurationError, match="min.insync.replicas: Value must be at least 1"):
        plan(configs={"min.insync.replicas": "0"})


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


# -- the store ------------------------------------------------------------------------------------


def test_topics_survive_reopening(tmp_path):
    store = TopicStore(tmp_path)
    info = plan(partitions=2, configs={"retention.ms": "1000"})
    store.create(info)
    assert {p.name for p in tmp_path.iterdir()} >= {"chat-0", "chat-1", "topics.json"}
    assert f"topic_id: {info.topic_id}" in (tmp_path / "chat-0" / "partition.metadata").read_text()
    again = TopicStore(tmp_path)
    assert again.get("chat") == info
    assert not list(tmp_path.glob("*.tmp"))


def test_deleting_a_topic_removes_its_directories(tmp_path):
    store = TopicStore(tmp_path)
    store.create(plan(partitions=2))
    (tmp_path / "chat-1" / "00000000000000000000.log").write_bytes(b"data")
    store.delete("chat")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["topics.json"]
    assert TopicStore(tmp_path).get("chat") is None
    with pytest.raises(UnknownTopicOrPartitionError):
        store.delete("chat")


def test_what_a_crash_leaves_is_cleaned_on_open(tmp_path):
    store = TopicStore(tmp_path)
    info = plan(partitions=1)
    store.create(info)
    # a delete cut short after the rename; a topic forgotten before its directories went;
    # an older topic of the same name; a partition beyond the count
    (tmp_path / "old-0.0123456789abcdef-delete").mkdir()
    (tmp_path / "gone-0").mkdir()
    (tmp_path / "chat-5").mkdir()
    store2 = TopicStore(tmp_path)
    assert store2.get("chat") == info
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat-0", "topics.json"]
    (tmp_path / "chat-0" / "partition.metadata").write_text("version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n")
    TopicStore(tmp_path)
    assert not (tmp_path / "chat-0").exists()


def test_a_missing_partition_directory_is_made_again(tmp_path):
    store = TopicStore(tmp_path)
    info = plan(partitions=1)
    store.create(info)
    (tmp_path / "chat-0" / "partition.metadata").unlink()
    (tmp_path / "chat-0").rmdir()
    path = TopicStore(tmp_path).ensure_partition_dir(info, 0)
    assert (path / "partition.metadata").exists()


def test_a_damaged_or_missing_topics_file_stops_the_broker_rather_than_delete_data(tmp_path):
    store = TopicStore(tmp_path)
    store.create(plan())
    (tmp_path / "topics.json").write_text("{not json")
    with pytest.raises(BrokerStateError, match="unreadable topic metadata"):
        TopicStore(tmp_path)
    (tmp_path / "topics.json").unlink()
    with pytest.raises(BrokerStateError, match="topics.json is missing"):
        TopicStore(tmp_path)
    assert (tmp_path / "chat-0").is_dir()
    (tmp_path / "topics.json").write_text(json.dumps({"version": 1, "topics": [
        {"name": "../x", "id": "x", "replicas": [[1]]}]}))
    with pytest.raises(BrokerStateError):
        TopicStore(tmp_path)


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
