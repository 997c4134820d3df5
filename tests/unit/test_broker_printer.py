"""The broker printers and the pure parts of the Kafka tools, without a server: the texts are
the Kafka tools' (their integration tests check them end to end through real processes)."""
from __future__ import annotations

import json

import pytest

from dcli.cli.kafka.consumer_groups import new_offsets, offset_rows
from dcli.client.consumer import ConsumerRecord
from dcli.output.broker import MessageFormatter, printer_for
from dcli.v1 import broker_pb2 as bpb
from dcli.wire import errors


def topic(name, partitions, configs=None):
    return bpb.TopicMetadata(name=name, topic_id="id-" + name, configs=configs or {}, partitions=[
        bpb.PartitionState(partition=n, leader=leader, leader_epoch=0, replicas=replicas, isr=isr)
        for n, (leader, replicas, isr) in enumerate(partitions)])


def record(value, key=None, headers=()):
    return ConsumerRecord("t", 2, 7, 1000, 0, key, value, tuple(headers), 3)


def test_describe_prints_kafka_topics_lines_and_its_filters(capsys):
    t = topic("chat", [(1, [1, 2], [1, 2]), (-1, [2, 1], [1])], {"retention.ms": "1000"})
    p = printer_for("simple")
    p.topics_described([t])
    assert capsys.readouterr().out == (
        "Topic: chat\tTopicId: id-chat\tPartitionCount: 2\tReplicationFactor: 2\tConfigs: retention.ms=1000\n"
        "\tTopic: chat\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1,2\n"
        "\tTopic: chat\tPartition: 1\tLeader: none\tReplicas: 2,1\tIsr: 1\n")
    p.topics_described([t], under_replicated=True)
    assert capsys.readouterr().out == "\tTopic: chat\tPartition: 1\tLeader: none\tReplicas: 2,1\tIsr: 1\n"
    p.topics_described([t, topic("plain", [(1, [1], [1])])], with_overrides=True)
    assert capsys.readouterr().out.startswith("Topic: chat\t")


def test_json_prints_one_object_per_topic(capsys):
    printer_for("json").topics_described([topic("chat", [(1, [1], [1])])])
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {"topic": "chat", "topic_id": "id-chat", "configs": {}, "partitions": [
        {"partition": 0, "leader": 1, "leader_epoch": 0, "replicas": [1], "isr": [1]}]}


def test_table_prints_the_tools_text(capsys):
    printer_for("table").topic_names(["a", "b"])
    assert capsys.readouterr().out == "a\nb\n"


def test_the_formatter_prints_kafkas_fields_in_kafkas_order():
    f = MessageFormatter({"print.key": "true", "print.offset": "true", "print.partition": "true",
                          "print.headers": "true", "key.separator": "|"})
    assert f.format(record(b"v", b"k", [("h", b"1")])) == "Partition:2|Offset:7|h:1|k|v\n"
    assert f.format(record(None)).endswith("NO_HEADERS|null|null\n")
    # Kafka's quirk: without the value there is no line separator
    assert MessageFormatter({"print.value": "false", "print.key": "true"}).format(record(b"v", b"k")) == "k"
    with pytest.raises(errors.UsageError, match="Unknown formatter property: print.colour"):
        MessageFormatter({"print.colour": "true"})


def test_offset_rows_put_the_busiest_member_first_then_the_unowned():
    a, b = object(), object()
    owned = [(a, [("t", 0)]), (b, [("t", 2), ("t", 1)])]
    rows = offset_rows(owned, {("t", 0): 5, ("u", 0): 1})
    assert rows == [(("t", 1), b), (("t", 2), b), (("t", 0), a), (("u", 0), None)]


def test_a_reset_is_clamped_to_the_log():
    parts = [("t", 0), ("t", 1)]
    earliest, latest = {("t", 0): 2, ("t", 1): 0}, {("t", 0): 10, ("t", 1): 4}
    assert new_offsets(parts, ("shift", -5), {("t", 0): 3}, earliest, latest) == {("t", 0): 2, ("t", 1): 0}
    assert new_offsets(parts, ("offset", 99), {}, earliest, latest) == {("t", 0): 10, ("t", 1): 4}
    assert new_offsets(parts, "current", {("t", 0): 6}, earliest, latest) == {("t", 0): 6, ("t", 1): 4}
