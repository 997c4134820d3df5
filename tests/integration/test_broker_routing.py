"""The broker clients find their way as Kafka's do, against real servers: a bootstrap list whose
first server is dead, group requests to the coordinator FindCoordinator names, partitions
fetched from their leaders, and a producer and consumer that ride out their broker's restart
(what they do when a leader dies) with every record delivered exactly once."""
from __future__ import annotations

import socket
import time
import uuid

import pytest

from dcli.client import Admin, Consumer, Producer
from dcli.wire.murmur2 import partition_for_key
from tests.conftest import read_records, run_cli

WAIT_S = 60


def topic() -> str:
    return f"r{uuid.uuid4().hex[:8]}"


def dead_address() -> str:
    """A 127.0.0.1 port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def poll_until(consumer: Consumer, count: int, timeout: float = WAIT_S) -> list:
    """Poll until `count` records came (or fail after `timeout`)."""
    out: list = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"{len(out)} of {count} records within {timeout} s")
        out += consumer.poll(1000)
    return out


def test_a_dead_first_bootstrap_server_is_skipped_by_admin_producer_and_consumer(server):
    servers = f"{dead_address()},{server.address}"
    name, group = topic(), f"grp-{uuid.uuid4().hex[:6]}"
    with Admin(servers) as admin:
        admin.create_topic(name, partitions=3)
        assert name in admin.list_topics()
        [described] = admin.describe_topics([name])
        assert [p.leader for p in described.partitions] == [1, 1, 1]
    with Producer(servers, linger_ms=1) as p:
        futures = [p.send(name, b"v%d" % i, key=b"k%d" % i) for i in range(60)]
        p.flush()
        assert [f.result(timeout=WAIT_S).partition for f in futures] == [
            partition_for_key(b"k%d" % i, 3) for i in range(60)]
    with Consumer(servers, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False) as c:
        c.subscribe([name])
        got = poll_until(c, 60)
        assert sorted(r.value for r in got) == sorted(b"v%d" % i for i in range(60))
        c.commit()
    with Admin(servers) as admin:
        assert sum(admin.committed_offsets(group).values()) == 60
        assert group in [g.group_id for g in admin.list_groups()]
        [d] = admin.describe_groups([group])
        assert d.state == "Empty"
        assert admin.list_offsets([(name, p) for p in range(3)], -1) == admin.committed_offsets(group)


def test_group_requests_go_to_the_coordinator_find_coordinator_names(server):
    servers = f"{dead_address()},{server.address}"
    name, group = topic(), f"grp-{uuid.uuid4().hex[:6]}"
    with Admin(servers) as admin:
        admin.create_topic(name, partitions=2)
        assert admin.find_coordinator(group) == (1, server.address)      # a lone broker coordinates all
        admin.commit_offsets(group, {(name, 0): 0, (name, 1): 0})
    kafka = lambda *a: run_cli("kafka", *a, "--bootstrap-server", servers)   # noqa: E731
    r = kafka("consumer-groups", "--describe", "--group", group, "--state")
    assert r.returncode == 0, r.stderr
    [header, row] = [line for line in r.stdout.decode().splitlines() if line.strip()]
    assert header.split()[:3] == ["GROUP", "COORDINATOR", "(ID)"]
    assert row.split()[:3] == [group, server.address, "(1)"]             # FindCoordinator's answer
    assert group in kafka("consumer-groups", "--list").stdout.decode().splitlines()
    r = kafka("topics", "--describe", "--topic", name)
    assert r.returncode == 0 and f"Topic: {name}" in r.stdout.decode()


def test_several_partitions_are_each_read_from_their_leader(server):
    name = topic()
    with Admin(server.address) as admin:
        admin.create_topic(name, partitions=6)
    with Producer(server.address, linger_ms=2) as p:
        metas = [f.result(timeout=WAIT_S) for f in [p.send(name, b"%d" % i, partition=i % 6) for i in range(300)]]
    assert all(m.offset == i // 6 for i, m in enumerate(metas))
    tps = [(name, part) for part in range(6)]
    with Consumer(server.address, auto_offset_reset="earliest", fetch_max_wait_ms=50) as c:
        c.assign(tps)
        got = poll_until(c, 300)
        for part in range(6):
            mine = [r for r in got if r.partition == part]
            assert [r.offset for r in mine] == list(range(50))
            assert [r.value for r in mine] == [b"%d" % i for i in range(part, 300, 6)]
        c.seek_to_beginning([(name, 3)])
        assert c.position((name, 3)) == 0
        c.seek_to_end()
        assert [c.position(tp) for tp in tps] == [50] * 6


def test_producer_and_consumers_ride_out_a_broker_restart_exactly_once(fresh_server):
    """With one broker, a restart is what the death of a leader looks like to a client: its
    requests fail, it asks Metadata (unanswered until a broker is back), and sends again. One
    consumer is fetching when the broker dies, the other looks for its first positions while
    it is down; neither raises."""
    name = topic()
    tps = [(name, 0), (name, 1)]
    address = fresh_server.address
    with Admin(address) as admin:
        admin.create_topic(name, partitions=2)
    with Producer(address, linger_ms=0, batch_size=256) as p, \
            Consumer(address, auto_offset_reset="earliest", fetch_max_wait_ms=100) as fetching, \
            Consumer(address, auto_offset_reset="earliest") as starting:
        fetching.assign(tps)
        starting.assign(tps)
        first = [p.send(name, b"a%03d" % i, partition=i % 2) for i in range(200)]
        first[50].result(timeout=WAIT_S)
        got = poll_until(fetching, 1)
        fresh_server.kill()                         # while later batches are on their way
        second = [p.send(name, b"b%03d" % i, partition=i % 2) for i in range(100)]
        got += fetching.poll(300) + fetching.poll(300)
        assert starting.poll(300) == []
        fresh_server.start()
        p.flush(timeout=WAIT_S * 2)
        metas = [f.result(timeout=0) for f in first + second]
        got += poll_until(fetching, 300 - len(got), timeout=WAIT_S * 2)
        late = poll_until(starting, 300, timeout=WAIT_S * 2)
    sent = [b"a%03d" % i for i in range(200)] + [b"b%03d" % i for i in range(100)]
    for part in (0, 1):
        expected = [v for i, v in enumerate(sent) if metas[i].partition == part]
        assert sorted(m.offset for m in metas if m.partition == part) == list(range(150))
        for records in (got, late):
            mine = [r for r in records if r.partition == part]
            assert [r.value for r in mine] == expected                  # in order, nothing twice
            assert [r.offset for r in mine] == list(range(150))
    assert len(read_records(address, name, 2)) == 300
