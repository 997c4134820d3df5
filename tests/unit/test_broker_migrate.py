"""Reading a data directory of the older single-node layout (server/broker/migrate.py): what is
found, what is refused rather than lost, and the one-line refusal of a node of a cluster."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dcli_server.broker.migrate import MigrationRefused, find_old_layout, refuse_if_clustered
from dcli_server.broker.offsets import OffsetAndMetadata
from dcli_server.broker.topics import BrokerStateError, new_topic_id

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from legacy_layout import write_old_layout  # noqa: E402


def test_topics_offsets_and_the_producer_id_block_are_found(tmp_path):
    topic_id = new_topic_id()
    write_old_layout(tmp_path, topics={"chat": (topic_id, 2, {"retention.ms": "1000"})},
                     offsets={"g": {("chat", 0): 5, ("chat", 1): 7}}, producer_id_block_end=2000)
    old = find_old_layout(tmp_path)
    [topic] = old.topics
    assert (topic.name, topic.topic_id, topic.replicas, dict(topic.configs)) == (
        "chat", topic_id, ((1,), (1,)), {"retention.ms": "1000"})
    assert old.offsets == {"g": {("chat", 0): OffsetAndMetadata(5, "", 1700000000000),
                                 ("chat", 1): OffsetAndMetadata(7, "", 1700000000000)}}
    assert old.producer_id_block_end == 2000
    assert old.describe() == f"1 topic(s) and the committed offsets of 1 group(s) in {tmp_path}"


def test_a_new_or_migrated_directory_has_nothing_to_migrate(tmp_path):
    assert find_old_layout(tmp_path) is None
    (tmp_path / "broker" / "chat-0").mkdir(parents=True)
    (tmp_path / "broker" / "meta.properties").write_text("cluster.id=x\nnode.id=1\nversion=1\ndcli.metadata=tree\n")
    assert find_old_layout(tmp_path) is None


def test_damaged_old_metadata_stops_the_start_rather_than_lose_data(tmp_path):
    write_old_layout(tmp_path, topics={"chat": (new_topic_id(), 1, {})})
    topics = tmp_path / "broker" / "topics.json"
    topics.write_text("{not json")
    with pytest.raises(BrokerStateError, match="unreadable topic metadata"):
        find_old_layout(tmp_path)
    topics.write_text(json.dumps({"version": 1, "topics": [{"name": "../x", "id": "x", "replicas": [[1]]}]}))
    with pytest.raises(BrokerStateError):
        find_old_layout(tmp_path)
    topics.unlink()       # partition directories without their topics: not strays to remove
    with pytest.raises(BrokerStateError, match="topics.json is missing but 1 partition directories"):
        find_old_layout(tmp_path)
    assert (tmp_path / "broker" / "chat-0").is_dir()


def test_a_node_of_a_cluster_refuses_with_one_line_that_says_how(tmp_path):
    write_old_layout(tmp_path, topics={"chat": (new_topic_id(), 1, {})})
    old = find_old_layout(tmp_path)
    refuse_if_clustered(old, 1)
    with pytest.raises(MigrationRefused) as e:
        refuse_if_clustered(old, 3)
    message = str(e.value)
    assert "\n" not in message and "start it alone once to migrate it" in message
    assert f"--data-dir {tmp_path}" in message
