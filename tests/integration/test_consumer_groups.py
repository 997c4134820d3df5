"""Consumer groups with real processes: partitions split among members, rebalances when one
leaves or dies, committed offsets carry the work over; and kafka-consumer-groups' views."""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid

import pytest

from dcli.client import Admin, Producer
from tests.conftest import ROOT, run_cli

WAIT_S = 60
MEMBER = str(ROOT / "tests" / "integration" / "group_member.py")


class Member:
    def __init__(self, server, group: str, topic: str, name: str):
        self.name = name
        self.proc = subprocess.Popen([sys.executable, MEMBER, server.address, group, topic, name],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
        self.records: list[tuple[int, int, str]] = []
        self.assigned: list[int] | None = None
        self._buf = b""

    def pump(self, sel_timeout: float = 0.0) -> bool:
        """Read what the member printed so far; False once it has ended."""
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(sel_timeout):
            return True
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            return False
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            msg = json.loads(line)
            if "assigned" in msg:
                self.assigned = msg["assigned"]
            elif "offset" in msg:
                self.records.append((msg["partition"], msg["offset"], msg["value"]))
        return True

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=WAIT_S)
        while self.pump(0.5):
            pass


def wait_for(members, condition, timeout: float = WAIT_S) -> None:
    """Read the members' output until condition() holds (woken by their lines)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out: {[(m.name, m.assigned, len(m.records)) for m in members]}")
        sel = selectors.DefaultSelector()
        for m in members:
            if m.proc.poll() is None:
                sel.register(m.proc.stdout, selectors.EVENT_READ, m)
        for key, _ in sel.select(1.0):
            key.data.pump()


def produce(server, topic: str, values: list[str], partitions: int = 3) -> None:
    with Producer(server.address, linger_ms=0) as p:
        for i, v in enumerate(values):
            p.send(topic, v.encode(), partition=i % partitions)
        p.flush()


@pytest.mark.slow
def test_three_members_split_rebalance_and_nothing_is_lost_or_doubled(server):
    topic, group = f"g{uuid.uuid4().hex[:8]}", f"grp-{uuid.uuid4().hex[:6]}"
    with Admin(server.address) as admin:
        admin.create_topic(topic, partitions=3)
    first = [f"a{i}" for i in range(30)]
    produce(server, topic, first)
    members = [Member(server, group, topic, f"m{i}") for i in range(3)]
    try:
        everyone = lambda: [r for m in members for r in m.records]   # noqa: E731
        wait_for(members, lambda: all(m.assigned and len(m.assigned) == 1 for m in members)
                 and len(everyone()) >= 30)
        assert sorted(p for m in members for p in m.assigned) == [0, 1, 2]     # one partition each
        # a clean leave: the others take its partition from its committed offset
        leaving = members[2]
        leaving.stop()
        wait_for(members[:2], lambda: sorted(p for m in members[:2] for p in (m.assigned or [])) == [0, 1, 2])
        second = [f"b{i}" for i in range(30)]
        produce(server, topic, second)
        wait_for(members, lambda: len(everyone()) >= 60)
        values = sorted(v for _, _, v in everyone())
        assert values == sorted(first + second)           # every record once: none lost, none twice
        # a member that dies (SIGKILL) is noticed by its session timeout; its partitions move
        members[1].stop(signal.SIGKILL)
        third = [f"c{i}" for i in range(9)]
        produce(server, topic, third)
        wait_for(members[:1], lambda: set(third) <= {v for _, _, v in members[0].records}, timeout=90)
        assert sorted(members[0].assigned) == [0, 1, 2]
        seen = [v for _, _, v in everyone()]
        assert set(seen) == set(first + second + third)   # nothing lost (a kill may repeat uncommitted work)
    finally:
        for m in members:
            m.stop(signal.SIGKILL)


def test_console_consumer_in_a_group_and_the_groups_tool(server):
    topic, group = f"g{uuid.uuid4().hex[:8]}", f"grp-{uuid.uuid4().hex[:6]}"
    run = lambda *a, **kw: run_cli("kafka", *a, server=server, **kw)   # noqa: E731
    assert run("topics", "--create", "--topic", topic, "--partitions", "2").returncode == 0
    produce(server, topic, ["one", "two", "three"], partitions=2)        # partitions 0, 1, 0
    r = run("console-consumer", "--topic", topic, "--group", group, "--from-beginning", "--max-messages", "3")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.decode().splitlines()) == ["one", "three", "two"]
    assert r.stderr.decode().endswith("Processed a total of 3 messages\n")
    assert group in run("consumer-groups", "--list").stdout.decode().splitlines()
    with Producer(server.address, linger_ms=0) as p:
        p.send(topic, b"four", partition=1).result(timeout=WAIT_S)
    r = run("consumer-groups", "--describe", "--group", group)
    assert r.stderr.decode() == f"\nConsumer group '{group}' has no active members.\n"
    lines = r.stdout.decode().split("\n")
    assert lines[0] == "" and lines[1].split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET",
                                                   "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]
    rows = [line.split() for line in lines[2:] if line.strip()]
    assert rows == [[group, topic, "0", "2", "2", "0", "-", "-", "-"],
                    [group, topic, "1", "1", "2", "1", "-", "-", "-"]]
    assert lines[1].index("TOPIC") == max(15, len(group)) + 1          # Kafka's column widths
    # reset to the beginning: a dry run changes nothing, --execute does
    r = run("consumer-groups", "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest")
    assert r.stderr.decode().startswith("WARN: No action will be performed as the --execute option is missing.")
    assert [line.split() for line in r.stdout.decode().splitlines() if line.strip()][1:] == [
        [group, topic, "0", "0"], [group, topic, "1", "0"]]
    r = run("console-consumer", "--topic", topic, "--group", group, "--max-messages", "1", "--timeout-ms", "2000")
    assert r.stdout.decode() == "four\n"                                 # committed offsets unchanged
    r = run("consumer-groups", "--reset-offsets", "--group", group, "--topic", f"{topic}:1", "--to-offset", "0",
            "--execute")
    assert r.returncode == 0 and r.stderr == b""
    r = run("console-consumer", "--topic", topic, "--group", group, "--max-messages", "2", "--timeout-ms", "3000")
    assert sorted(r.stdout.decode().splitlines()) == ["four", "two"]
    r = run("consumer-groups", "--delete", "--group", group)
    assert r.stdout.decode() == f"Deletion of requested consumer groups ('{group}') was successful.\n"
    r = run("consumer-groups", "--describe", "--group", group)
    assert r.stdout.decode() == f"\nError: Consumer group '{group}' does not exist.\n"
    r = run("consumer-groups", "--list", "--describe")
    assert r.returncode == 2


def test_committed_offsets_survive_kill_9(fresh_server):
    topic, group = f"g{uuid.uuid4().hex[:8]}", "durable"
    produce(fresh_server, topic, ["x", "y", "z"], partitions=1)
    with Admin(fresh_server.address) as admin:
        admin.commit_offsets(group, {(topic, 0): 2})
    fresh_server.restart()                              # SIGKILL, then start on the same data
    with Admin(fresh_server.address) as admin:
        assert [(g.group_id, g.state) for g in admin.list_groups()] == [(group, "Empty")]   # listed before use
        assert admin.committed_offsets(group) == {(topic, 0): 2}
