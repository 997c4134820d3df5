"""`dcli kafka perf-test producer|consumer` against a real server: Kafka's output lines (as
ProducerPerformance and ConsumerPerformance print them) and the records really sent."""
from __future__ import annotations

import re
import uuid

from dcli.client import Admin
from tests.conftest import run_cli
from tests.waiting import eventually

NUM = r"\d+(?:\.\d+)?"
PRODUCER_TOTAL = re.compile(rf"(\d+) records sent, {NUM} records/sec \({NUM} MB/sec\), \d+\.\d\d ms avg latency, "
                            r"\d+\.\d\d ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99\.9th\.")
PRODUCER_WINDOW = re.compile(rf"\d+ records sent, \d+\.\d records/sec \(\d+\.\d\d MB/sec\), \d+\.\d ms avg latency, "
                             r"\d+\.\d ms max latency\.")
CONSUMER_HEADER = ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
                   "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
DATE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}"
F4 = r"-?\d+\.\d{4}"
CONSUMER_LINE = re.compile(rf"{DATE}, {DATE}, {F4}, {F4}, (\d+), {F4}, \d+, -?\d+, {F4}, {F4}")
DETAILED_LINE = re.compile(rf"{DATE}, 0, {F4}, {F4}, \d+, {F4}, \d+, -?\d+, {F4}, {F4}")


def topic() -> str:
    return f"perf{uuid.uuid4().hex[:8]}"


def perf(server, *args: str):
    return run_cli("kafka", "perf-test", *args, server=server)


def end_offsets(server, name: str, partitions: int, expect: int | None = None) -> int:
    """The topic's end offsets, summed. acks=1 is answered before the fsync round that moves the
    high watermark, so with `expect` this polls (up to a generous deadline) until they reach it."""
    with Admin(server.address) as admin:
        def total() -> int:
            return sum(admin.list_offsets([(name, p) for p in range(partitions)], -1).values())
        if expect is None:
            return total()
        return eventually(lambda: (n := total()) >= expect and n, 30, f"end offsets to reach {expect}")


def test_producer_then_consumer_in_kafkas_lines(server):
    name = topic()
    with Admin(server.address) as admin:
        admin.create_topic(name, partitions=3)
    r = perf(server, "producer", "--topic", name, "--num-records", "3000", "--record-size", "100",
             "--throughput", "-1", "--producer-props", f"bootstrap.servers={server.address}", "acks=1",
             "linger.ms=2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert all(PRODUCER_WINDOW.fullmatch(line) for line in lines[:-1]), lines
    total = PRODUCER_TOTAL.fullmatch(lines[-1])
    assert total and total.group(1) == "3000", lines[-1]
    assert end_offsets(server, name, 3, expect=3000) == 3000

    r = perf(server, "consumer", "--bootstrap-server", server.address, "--topic", name, "--messages", "3000",
             "--group", f"g-{name}", "--timeout", "30000")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == CONSUMER_HEADER and len(lines) == 2, lines
    line = CONSUMER_LINE.fullmatch(lines[1])
    assert line and line.group(1) == "3000", lines[1]
    mb = float(lines[1].split(", ")[2])
    assert abs(mb - 3000 * 100 / 2**20) < 1e-4          # value bytes, in MiB


def test_producer_throttled_acks_all_and_metrics(server):
    name = topic()
    r = perf(server, "producer", "--topic", name, "--num-records", "200", "--payload-monotonic",
             "--throughput", "100000", "--print-metrics", "--producer-props", "acks=all")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().splitlines()
    assert PRODUCER_TOTAL.fullmatch(out[0]) and out[0].startswith("200 records sent"), out
    assert out[2].startswith("Metric Name") and any("record-send-total" in line and line.endswith(": 200.000")
                                                    for line in out[3:]), out
    assert end_offsets(server, name, 1) == 200


def test_consumer_detailed_stats_and_timeout(server):
    name = topic()
    r = perf(server, "producer", "--topic", name, "--num-records", "500", "--record-size", "10",
             "--throughput", "-1", "--producer-props", "acks=1")
    assert r.returncode == 0, r.stderr
    r = perf(server, "consumer", "--topic", name, "--messages", "600", "--timeout", "300",
             "--show-detailed-stats", "--reporting-interval", "1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == CONSUMER_HEADER.replace("start.time, end.time", "time, threadId")
    assert lines[-1].startswith("WARNING: Exiting before consuming the expected number of messages: "
                                "timeout (300 ms) exceeded."), lines
    assert all(DETAILED_LINE.fullmatch(line) for line in lines[1:-1]), lines


def test_usage_errors(server):
    r = perf(server, "producer", "--topic", "x", "--num-records", "10", "--record-size", "10", "--throughput", "-1")
    assert r.returncode != 0 and b"Either --producer-props or --producer.config must be specified." in r.stderr
    r = perf(server, "producer", "--topic", "x", "--num-records", "10", "--throughput", "-1",
             "--producer-props", "acks=1")
    assert r.returncode != 0 and b"--record-size" in r.stderr
    r = perf(server, "producer", "--topic", "x", "--num-records", "10", "--record-size", "10", "--throughput", "-1",
             "--producer-props", "acks")
    assert r.returncode != 0 and b"Invalid property: acks" in r.stderr
