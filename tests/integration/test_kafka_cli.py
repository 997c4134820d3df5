"""`dcli kafka topics` and `dcli kafka console-producer` (and their kafka-* names) against a real
server, with Kafka's outputs and error lines; records read back with raw Fetch requests."""
from __future__ import annotations

import re
import time
import uuid

import grpc
import pytest

from dcli.v1 import broker_pb2 as bpb
from dcli.v1 import broker_pb2_grpc as bpb_grpc
from dcli.wire.murmur2 import partition_for_key
from dcli.wire.records import decode_records, iter_batches
from tests.conftest import run_cli


def topic() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def kafka(server, *args, input: bytes | None = None):
    return run_cli("kafka", *args, server=server, input=input)


def fetch_all(server, name: str, partitions: int) -> dict[int, list[tuple[int, bytes | None, bytes | None, tuple]]]:
    stub = bpb_grpc.BrokerStub(grpc.insecure_channel(server.address))
    reply = stub.Fetch(bpb.FetchRequest(max_wait_ms=0, min_bytes=0, max_bytes=1 << 24, partitions=[
        bpb.FetchPartition(topic=name, partition=p, fetch_offset=0, partition_max_bytes=1 << 24)
        for p in range(partitions)]), timeout=30)
    out = {}
    for p in reply.partitions:
        assert p.error_code == 0, p.error_message
        out[p.partition] = [(r.offset, r.key, r.value, tuple(r.headers))
                            for _, batch in iter_batches(p.records) for r in decode_records(bytes(batch))]
    return out


def test_create_describe_list_delete(server):
    name = topic()
    r = kafka(server, "topics", "--create", "--topic", name, "--partitions", "3",
              "--config", "retention.ms=1000", "--bootstrap-server", server.address)
    assert r.returncode == 0 and r.stdout.decode() == f"Created topic {name}.\n", r.stderr
    out = kafka(server, "topics", "--describe", "--topic", name).stdout.decode().splitlines()
    assert re.fullmatch(rf"Topic: {name}\tTopicId: [A-Za-z0-9_-]{{22}}\tPartitionCount: 3\t"
                        r"ReplicationFactor: 1\tConfigs: retention.ms=1000", out[0]), out[0]
    assert out[1:] == [f"\tTopic: {name}\tPartition: {p}\tLeader: 1\tReplicas: 1\tIsr: 1" for p in range(3)]
    assert name in kafka(server, "topics", "--list").stdout.decode().splitlines()
    r = kafka(server, "topics", "--alter", "--topic", name, "--partitions", "4")
    assert r.returncode == 0 and r.stdout == b""
    assert kafka(server, "topics", "--describe", "--topic", name).stdout.decode().count("\tPartition: ") == 4
    r = kafka(server, "topics", "--delete", "--topic", name)
    assert r.returncode == 0 and r.stdout == b""
    assert name not in kafka(server, "topics", "--list").stdout.decode().splitlines()


def test_topic_errors_in_kafkas_words(server):
    name = topic()
    assert kafka(server, "topics", "--create", "--topic", name).returncode == 0
    r = kafka(server, "topics", "--create", "--topic", name)
    assert r.returncode != 0
    assert r.stdout.decode() == f"Error while executing topic command : Topic '{name}' already exists.\n"
    assert kafka(server, "topics", "--create", "--topic", name, "--if-not-exists").stdout == b""
    r = kafka(server, "topics", "--create", "--topic", topic(), "--replication-factor", "3", "--partitions", "3")
    assert r.stdout.decode() == (
        "Error while executing topic command : Unable to replicate the partition 3 time(s): The target "
        "replication factor of 3 cannot be reached because only 1 broker(s) are registered.\n")
    r = kafka(server, "topics", "--create", "--topic", "bad topic!")
    assert r.stdout.decode() == ("Error while executing topic command : Topic name is invalid: 'bad topic!' "
                                 "contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'\n")
    for evil in ("../escape", "a/b", ".."):
        r = kafka(server, "topics", "--create", "--topic", evil)
        assert r.returncode != 0 and "Topic name is invalid" in r.stdout.decode()
    r = kafka(server, "topics", "--describe", "--topic", "nope-" + name)
    assert r.stdout.decode() == f"Error while executing topic command : Topic 'nope-{name}' does not exist as expected\n"
    r = kafka(server, "topics", "--list", "--create")
    assert r.returncode == 2 and r.stderr.decode() == (
        "Command must include exactly one action: --list, --describe, --create, --alter or --delete\n")
    r = kafka(server, "topics", "--create", "--topic", topic(), "--config", "novalue")
    assert r.returncode == 2 and "Invalid topic config" in r.stderr.decode()
    r = kafka(server, "topics", "--create", "--topic", "a.b_" + name)
    assert r.stdout.decode().startswith("WARNING: Due to limitations in metric names")


def test_console_producer_keys_land_on_kafkas_partitions(server):
    name = topic()
    assert kafka(server, "topics", "--create", "--topic", name, "--partitions", "3").returncode == 0
    lines = b"alice\thi\nbob\tyo\nuser-1\tx\nkey\tv2\n"
    r = kafka(server, "console-producer", "--topic", name, "--property", "parse.key=true", input=lines)
    assert r.returncode == 0 and r.stdout == b"", r.stderr      # no '>' prompt when not a terminal
    got = fetch_all(server, name, 3)
    for key, value in ((b"alice", b"hi"), (b"bob", b"yo"), (b"user-1", b"x"), (b"key", b"v2")):
        assert any(k == key and v == value for _, k, v, _ in got[partition_for_key(key, 3)]), (key, got)
    assert partition_for_key(b"alice", 3) == 0 and partition_for_key(b"user-1", 3) == 2   # Kafka's own


def test_console_producer_round_robin_headers_and_null_marker(server):
    name = topic()
    assert kafka(server, "topics", "--create", "--topic", name, "--partitions", "2").returncode == 0
    r = kafka(server, "console-producer", "--topic", name, "--property", "parse.headers=true",
              "--property", "null.marker=NULL", input=b"h1:v1,h2:v2\tfirst\n\tsecond\nh:NULL\tNULL\n")
    assert r.returncode == 0, r.stderr
    got = fetch_all(server, name, 2)
    assert [(v, h) for _, _, v, h in got[0]] == [(b"first", (("h1", b"v1"), ("h2", b"v2"))), (None, (("h", None),))]
    assert [(v, h) for _, _, v, h in got[1]] == [(b"second", ())]


def test_console_producer_errors(server):
    name = topic()
    r = kafka(server, "console-producer", "--topic", name, "--property", "parse.key=true", input=b"nokey\n")
    assert r.returncode == 2 and r.stderr.decode() == "No key separator found on line number 1: 'nokey'\n"
    r = kafka(server, "console-producer", "--topic", name, "--delivery", "twice", input=b"x\n")
    assert r.returncode == 2
    r = kafka(server, "console-producer", "--topic", "bad topic!", input=b"x\n")
    assert r.returncode != 0 and "Topic name is invalid" in r.stderr.decode()


@pytest.mark.parametrize("delivery", ["at-most-once", "at-least-once", "exactly-once"])
def test_console_producer_delivery_modes(server, delivery):
    name = topic()
    r = kafka(server, "console-producer", "--topic", name, "--delivery", delivery,
              input=b"".join(b"m%d\n" % i for i in range(20)))
    assert r.returncode == 0, r.stderr
    # acks=0 and 1 return before the broker's fsync, which makes the records visible: read
    # with long polls until they are there.
    from dcli.client import Consumer
    with Consumer(server.address, auto_offset_reset="earliest") as c:
        c.assign([(name, 0)])                 # auto-created with num.partitions=1
        values: list = []
        deadline = time.monotonic() + 30
        while len(values) < 20 and time.monotonic() < deadline:
            values += [r.value for r in c.poll(1000)]
    assert values == [b"m%d" % i for i in range(20)]


def test_console_consumer_partition_mode_and_formatter(server):
    name = topic()
    assert kafka(server, "topics", "--create", "--topic", name, "--partitions", "1").returncode == 0
    kafka(server, "console-producer", "--topic", name, "--property", "parse.key=true",
          input=b"alice\thello\nbob\tworld\n")
    r = kafka(server, "console-consumer", "--topic", name, "--partition", "0", "--offset", "earliest",
              "--max-messages", "2", "--property", "print.key=true", "--property", "print.partition=true",
              "--property", "print.offset=true")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "Partition:0\tOffset:0\talice\thello\nPartition:0\tOffset:1\tbob\tworld\n"
    assert r.stderr.decode().endswith("Processed a total of 2 messages\n")
    r = kafka(server, "console-consumer", "--topic", name, "--partition", "0", "--offset", "1",
              "--timeout-ms", "300")
    assert r.stdout.decode() == "world\n"
    assert r.stderr.decode().endswith("Processed a total of 1 messages\n")
    r = run_cli("-w", "json", "kafka", "console-consumer", "--topic", name, "--partition", "0",
                "--offset", "0", "--max-messages", "1", server=server)
    import json
    assert json.loads(r.stdout) == {"topic": name, "partition": 0, "offset": 0, "timestamp": json.loads(r.stdout)["timestamp"],
                                    "key": "alice", "value": "hello", "headers": {}}


def test_console_consumer_usage_errors(server):
    cases = {
        ("--offset", "5"): "The partition is required when offset is specified.",
        ("--topic", "x", "--partition", "0", "--offset", "abc"):
            "The provided offset value 'abc' is incorrect. Valid values are 'earliest', 'latest', or a non-negative long.",
        ("--topic", "x", "--group", "g", "--partition", "0"): "Options group and partition cannot be specified together.",
        (): "Exactly one of --include/--topic is required. ",
    }
    for args, message in cases.items():
        if args and args[0] == "--offset":
            args = ("--topic", "x", *args)
        r = kafka(server, "console-consumer", *args)
        assert r.returncode == 2 and r.stderr.decode() == message + "\n", (args, r.stderr)


def test_json_output(server):
    import json
    name = topic()
    assert kafka(server, "topics", "--create", "--topic", name, "--partitions", "2").returncode == 0
    r = run_cli("-w", "json", "kafka", "console-producer", "--topic", name, "--property", "parse.key=true",
                server=server, input=b"alice\tx\n")
    assert json.loads(r.stdout) == {"topic": name, "partition": partition_for_key(b"alice", 2), "offset": 0}
    r = run_cli("-w", "json", "kafka", "topics", "--describe", "--topic", name, server=server)
    [t] = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert t["topic"] == name and len(t["topic_id"]) == 22 and [p["partition"] for p in t["partitions"]] == [0, 1]
    assert t["partitions"][0] == {"partition": 0, "leader": 1, "leader_epoch": 0, "replicas": [1], "isr": [1]}
    r = run_cli("-w", "json", "kafka", "topics", "--list", server=server)
    assert {"topic": name} in [json.loads(line) for line in r.stdout.decode().splitlines()]
    r = run_cli("-w", "json", "kafka", "console-consumer", "--topic", name, "--group", "jg", "--from-beginning",
                "--max-messages", "1", server=server)
    assert json.loads(r.stdout)["key"] == "alice"
    r = run_cli("-w", "json", "kafka", "consumer-groups", "--describe", "--group", "jg", server=server)
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    mine = [row for row in rows if row["partition"] == partition_for_key(b"alice", 2)]
    assert mine and mine[0]["current_offset"] == 1 and mine[0]["lag"] == 0


def test_leader_election_on_one_broker_has_nothing_to_elect(server, tmp_path):
    name = topic()
    kafka(server, "topics", "--create", "--topic", name, "--partitions", "2")
    out = kafka(server, "leader-election", "--election-type", "PREFERRED", "--all-topic-partitions")
    assert out.returncode == 0
    assert out.stdout.decode().startswith("Valid replica already elected for partitions ")
    assert {f"{name}-0", f"{name}-1"} <= set(out.stdout.decode().strip().split(" partitions ")[1].split(", "))
    out = kafka(server, "leader-election", "--election-type", "preferred", "--topic", name)
    assert out.stdout.decode() == f"Valid replica already elected for partitions {name}-0, {name}-1\n"
    listed = tmp_path / "election.json"
    listed.write_text(f'{{"partitions": [{{"topic": "{name}", "partition": 1}}]}}')
    out = kafka(server, "leader-election", "--election-type", "preferred", "--path-to-json-file", str(listed))
    assert out.stdout.decode() == f"Valid replica already elected for partitions {name}-1\n"
    out = kafka(server, "leader-election", "--election-type", "preferred", "--topic", name, "--partition", "7")
    assert out.returncode == 1
    assert out.stdout.decode().startswith(f"Error completing leader election (PREFERRED) for partition: {name}-7: ")
    for args, message in [
        (("--all-topic-partitions",), "Missing required option(s) [election-type]"),
        (("--election-type", "fastest", "--all-topic-partitions"), "Unknown election type: fastest"),
        (("--election-type", "preferred"), "One and only one of the following options is required"),
        (("--election-type", "preferred", "--partition", "0", "--all-topic-partitions"), "Missing required option(s) [topic]"),
    ]:
        out = kafka(server, "leader-election", *args)
        assert out.returncode != 0 and message in (out.stdout + out.stderr).decode(), args



def test_console_consumer_check_crcs_property(server):
    """check.crcs (on by default, as in Kafka) can be turned off; a value that is not a boolean
    is refused in Kafka's words. The check itself: tests/unit/test_consumer_crc.py."""
    name = topic()
    assert kafka(server, "topics", "--create", "--topic", name, "--partitions", "1").returncode == 0
    assert kafka(server, "console-producer", "--topic", name, input=b"v1\n").returncode == 0
    read = ("console-consumer", "--topic", name, "--from-beginning", "--max-messages", "1", "--timeout-ms", "20000")
    unchecked = kafka(server, *read, "--consumer-property", "check.crcs=false")
    assert unchecked.returncode == 0 and unchecked.stdout.decode().splitlines() == ["v1"], unchecked.stderr
    bad = kafka(server, *read, "--consumer-property", "check.crcs=maybe")
    assert bad.returncode == 2 and "Invalid value maybe for configuration check.crcs" in bad.stderr.decode()
