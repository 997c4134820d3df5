"""A partition leader's SIGKILL while producing, on a real 3-node cluster: the producer (the
`Producer` class and the real `kafka-console-producer` subprocess, bootstrapped with every
node's address) refreshes its metadata from the live brokers and sends again until the new
leader takes the records, as Kafka's producer does until delivery.timeout.ms; nothing fails,
and a consumer then reads every record exactly once, in the order it was sent.

Every wait is on a predicate with a generous deadline; nothing sleeps for a fixed time.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

from dcli.client import Admin, Consumer, Producer
from dcli.wire import errors

from tests.cluster_fixture import DEFAULT_SERVER_ARGS
from tests.conftest import ROOT

WAIT_S = 60.0
PARTITIONS = 3
# A broker silent for 4 s is taken for dead (the tree's shortest session).
SERVER_ARGS = (*DEFAULT_SERVER_ARGS, "--broker-session-timeout-ms", "4000",
               "--override", "replica.lag.time.max.ms=2000")


def leader(c, topic: str, p: int, *alive: int) -> int:
    """The partition's leader as the first live node that answers says; -1 if none knows."""
    for i in alive or c.ids:
        try:
            with Admin(c.address(i), timeout=5) as admin:
                [t] = admin.describe_topics([topic])
                return next((x.leader for x in t.partitions if x.partition == p), -1)
        except errors.DcliError:
            continue
    return -1


def ready_topic(c, topic: str) -> int:
    """Create `topic` (3 partitions, replication factor 3); the leader of its partition 0."""
    with Admin(c.address(c.ids[0]), timeout=30) as admin:
        admin.create_topic(topic, PARTITIONS, 3, {})
    c.wait_for(lambda: all(leader(c, topic, p) > 0 for p in range(PARTITIONS)), WAIT_S)
    return leader(c, topic, 0)


def read_all(c, topic: str, expected: int) -> dict[int, list[bytes]]:
    """partition -> its values from offset 0, read with the Consumer from the live brokers
    until `expected` records came (or the deadline passed)."""
    out: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    deadline = time.monotonic() + WAIT_S
    with Consumer(c.servers) as consumer:
        consumer.assign([(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        while sum(map(len, out.values())) < expected and time.monotonic() < deadline:
            for r in consumer.poll(200):
                out[r.partition].append(r.value)
    return out


def assert_once_in_order(by_partition: dict[int, list[bytes]], sent: list[bytes]) -> None:
    """Every sent value is there exactly once, and each partition holds its values in the order
    they were sent."""
    everything = [v for values in by_partition.values() for v in values]
    assert sorted(everything) == sorted(sent)
    assert len(everything) == len(set(everything))
    rank = {v: i for i, v in enumerate(sent)}
    for p, values in by_partition.items():
        assert [rank[v] for v in values] == sorted(rank[v] for v in values), f"partition {p} out of order"


def test_the_producer_keeps_sending_through_a_leaders_sigkill(local_cluster):
    c = local_cluster(3, server_args=SERVER_ARGS)
    victim = ready_topic(c, "chat")
    sent = [f"p{i:04d}".encode() for i in range(400)]
    acked_at: dict[int, tuple[int, float]] = {}     # record -> (its partition, when it was acknowledged)
    # Kafka's defaults: retries unbounded, delivery.timeout.ms 120 s, idempotent with acks=all.
    with Producer(c.servers, acks="all", linger_ms=5) as producer:
        def send(i: int):
            fut = producer.send("chat", sent[i])
            fut.add_done_callback(lambda f: acked_at.setdefault(i, (f.result().partition, time.monotonic()))
                                  if f.exception() is None else None)
            return fut
        futures = [send(i) for i in range(200)]
        c.wait_for(lambda: len(acked_at) >= 100, WAIT_S)
        killed_at = time.monotonic()
        c.kill(victim)
        futures += [send(i) for i in range(200, 400)]
        producer.flush(WAIT_S * 2)
        failed = [(i, f.exception()) for i, f in enumerate(futures) if f.exception() is not None]
    assert not failed, failed[:3]
    alive = [i for i in c.ids if i != victim]
    assert leader(c, "chat", 0, *alive) in alive
    after = sorted(t - killed_at for i, (p, t) in acked_at.items() if i >= 200 and p == 0)
    print(f"failover: partition 0's records sent after the kill acknowledged from {after[0]:.2f} s "
          f"to {after[-1]:.2f} s after it")
    assert_once_in_order(read_all(c, "chat", len(sent)), sent)


def test_the_console_producer_keeps_sending_through_a_leaders_sigkill(local_cluster):
    """kafka-console-producer with its own defaults (3 retries, request.timeout.ms 1500):
    a dead leader's refused connections are not attempts, as in Kafka, whose producer sends
    nothing to a broker it cannot connect to."""
    c = local_cluster(3, server_args=SERVER_ARGS)
    victim = ready_topic(c, "chat")
    sent = [f"c{i:04d}".encode() for i in range(200)]
    bootstrap = ",".join(c.address(i) for i in c.ids)
    code = "from dcli.cli.main import main; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, "-w", "json", "kafka", "console-producer",
                             "--bootstrap-server", bootstrap, "--topic", "chat", "--timeout", "100"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        proc.stdin.write(b"".join(v + b"\n" for v in sent[:100]))
        proc.stdin.flush()
        c.wait_for(lambda: sum(map(len, read_all(c, "chat", 100).values())) >= 100, WAIT_S)
        killed_at = time.monotonic()
        c.kill(victim)
        out, err = proc.communicate(b"".join(v + b"\n" for v in sent[100:]), timeout=WAIT_S * 2)
        exited_at = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"Error when sending" not in err, err.decode()
    acked = [json.loads(line) for line in out.decode().splitlines()]
    assert len(acked) == len(sent)
    print(f"failover: the console producer exited {exited_at - killed_at:.2f} s after the kill")
    assert_once_in_order(read_all(c, "chat", len(sent)), sent)
