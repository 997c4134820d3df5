"""The recipes against a real server, each participant with its own session (its own client)."""
from __future__ import annotations

import queue
import threading

import pytest

from dcli.client import CoordClient
from dcli.recipes import (LeaderElection, LeaderObserver, Lock, Party, ReadLock, ServiceRegistry,
                          WriteLock, candidates)

WAIT_S = 30


@pytest.fixture
def clients(server):
    made = []

    def make() -> CoordClient:
        c = CoordClient(server.address).start()
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


class Node:
    """One candidate with its own session, recording what it is told."""

    def __init__(self, make, path: str, ident: str):
        self.client = make()
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.notified = 0
        self.election = LeaderElection(self.client, path, ident,
                                       on_elected=lambda: self.events.put("elected"),
                                       on_revoked=lambda r: self.events.put(f"revoked: {r}"),
                                       on_follow=lambda p: self.events.put(f"follow {p}"),
                                       on_notified=self._notified)

    def _notified(self, _event):
        self.notified += 1

    def next(self) -> str:
        return self.events.get(timeout=WAIT_S)


def test_the_seeds_election_sequence_without_herd_effect(clients, root_path):
    path = f"{root_path}/election"
    nodes = [Node(clients, path, f"node-{i}") for i in range(1, 5)]
    for n in nodes:
        n.election.join()
    names = [n.election.name for n in nodes]
    assert names == sorted(names)
    assert nodes[0].next() == "elected"
    for i, n in enumerate(nodes[1:], 1):
        assert n.next() == f"follow {names[i - 1]}"        # each watches its predecessor only
    assert [c.identifier for c in candidates(nodes[0].client, path)] == ["node-1", "node-2", "node-3", "node-4"]

    # the leader dies: the next one leads; only it was notified
    nodes[0].client.close()
    assert nodes[1].next() == "elected"
    assert [n.notified for n in nodes[1:]] == [1, 0, 0]

    # the old leader comes back (a new session) and joins at the end, as a follower
    back = Node(clients, path, "node-1")
    back.election.join()
    assert back.next() == f"follow {names[3]}"
    assert not back.election.is_leader

    # a non-leader (node-3) dies: its successor closes the gap; the leader is not disturbed
    nodes[2].client.close()
    assert nodes[3].next() == f"follow {names[1]}"
    assert [n.notified for n in (nodes[1], nodes[3], back)] == [1, 1, 0]    # one more: node-4's
    assert nodes[1].election.is_leader
    assert [c.identifier for c in candidates(back.client, path)] == ["node-2", "node-4", "node-1"]


def test_leave_hands_over_and_the_observer_sees_each_leader(clients, root_path):
    path = f"{root_path}/e"
    seen: queue.SimpleQueue = queue.SimpleQueue()
    observer = LeaderObserver(clients(), path, lambda c: seen.put(c and c.identifier)).start()
    assert seen.get(timeout=WAIT_S) is None
    a, b = Node(clients, path, "a"), Node(clients, path, "b")
    a.election.join()
    assert a.next() == "elected" and seen.get(timeout=WAIT_S) == "a"
    b.election.join()
    a.election.leave()
    assert a.next() == "revoked: left the election"
    assert b.election.wait_for_leadership(WAIT_S)
    assert seen.get(timeout=WAIT_S) == "b"
    observer.stop()


def test_a_suspended_leader_is_revoked_and_leads_again_on_reconnection(fresh_server, root_path):
    client = CoordClient(fresh_server.address, timeout=30).start()
    try:
        events: queue.SimpleQueue = queue.SimpleQueue()
        e = LeaderElection(client, "/e", "a", on_elected=lambda: events.put("elected"),
                           on_revoked=lambda r: events.put(r))
        e.join()
        assert events.get(timeout=WAIT_S) == "elected"
        fresh_server.restart()           # the session outlives the restart (timeout 30 s)
        assert events.get(timeout=WAIT_S) == "connection suspended"
        assert events.get(timeout=WAIT_S) == "elected"
        assert e.is_leader
    finally:
        client.close()


def test_registry_entries_follow_their_sessions(clients, root_path):
    registry_root = f"{root_path}/service_registry"
    watcher_reg = ServiceRegistry(clients(), registry_root)
    changes: queue.SimpleQueue = queue.SimpleQueue()
    discovery = watcher_reg.watch("orders", lambda inst: changes.put([i.address for i in inst]))
    assert changes.get(timeout=WAIT_S) == []
    worker1, worker2 = clients(), clients()
    r1 = ServiceRegistry(worker1, registry_root).register("orders", "127.0.0.1:8081", {"weight": "3"})
    assert changes.get(timeout=WAIT_S) == ["127.0.0.1:8081"]
    ServiceRegistry(worker2, registry_root).register("orders", "127.0.0.1:8082")
    assert changes.get(timeout=WAIT_S) == ["127.0.0.1:8081", "127.0.0.1:8082"]
    assert [i.weight for i in discovery.instances] == [3, 1]
    r1.update({"weight": "5", "cpu": "0.5"})
    assert discovery.wait_for(lambda inst: inst and inst[0].meta.get("cpu") == "0.5", WAIT_S)
    worker2.close()                                     # the process dies: its entry goes
    assert discovery.wait_for(lambda inst: [i.address for i in inst] == ["127.0.0.1:8081"], WAIT_S)
    r1.unregister()                                     # the elected leader deregisters (seed)
    assert discovery.wait_for(lambda inst: inst == [], WAIT_S)
    assert watcher_reg.services() == ["orders"]
    discovery.stop()


def test_a_bare_address_reads_as_an_instance(clients, root_path):
    zk = clients()
    zk.create(f"{root_path}/svc/n_", b"127.0.0.1:9000", sequence=True, ephemeral=True, makepath=True)
    [inst] = ServiceRegistry(zk, root_path).instances("svc")
    assert inst.address == "127.0.0.1:9000" and inst.meta == {}


def test_lock_mutual_exclusion_under_contention(clients, root_path):
    path = f"{root_path}/lock"
    inside, overlaps, counts = [0], [0], []
    guard = threading.Lock()

    def worker(n: int) -> None:
        lock = Lock(clients(), path, f"w{n}")
        for _ in range(5):
            with lock:
                with guard:
                    inside[0] += 1
                    overlaps[0] = max(overlaps[0], inside[0])
                counts.append(n)
                with guard:
                    inside[0] -= 1
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert overlaps[0] == 1 and sorted(counts) == sorted(list(range(4)) * 5)


def test_lock_timeout_and_non_blocking(clients, root_path):
    path = f"{root_path}/lock"
    holder, other = Lock(clients(), path, "holder"), Lock(clients(), path, "other")
    assert holder.acquire()
    assert other.acquire(blocking=False) is False
    assert other.acquire(timeout=0.2) is False
    assert holder.contenders() == ["holder"]            # the losers left no znode behind
    holder.release()
    assert other.acquire(timeout=WAIT_S)


def test_readers_share_and_writers_exclude(clients, root_path):
    path = f"{root_path}/rw"
    r1, r2 = ReadLock(clients(), path, "r1"), ReadLock(clients(), path, "r2")
    w = WriteLock(clients(), path, "w")
    assert r1.acquire(timeout=WAIT_S) and r2.acquire(timeout=WAIT_S)
    assert w.acquire(timeout=0.2) is False
    got = threading.Event()
    t = threading.Thread(target=lambda: w.acquire(timeout=WAIT_S) and got.set())
    t.start()
    r3 = ReadLock(clients(), path, "r3")
    r1.release()
    r2.release()
    t.join(timeout=WAIT_S)
    assert got.is_set() and w.is_acquired
    assert r3.acquire(timeout=0.2) is False             # a reader after a writer waits
    w.release()
    assert r3.acquire(timeout=WAIT_S)


def test_party_members_come_and_go_with_sessions(clients, root_path):
    path = f"{root_path}/party"
    a_client, b_client = clients(), clients()
    a, b = Party(a_client, path, "a"), Party(b_client, path, "b")
    a.join()
    b.join()
    assert a.members() == ["a", "b"] and len(a) == 2 and a.participating
    b_client.close()
    assert a.members() == ["a"]
    a.leave()
    assert a.members() == [] and not a.participating


def test_cancel_makes_a_blocked_acquire_give_up(clients, root_path):
    path = f"{root_path}/lock"
    holder, waiter = Lock(clients(), path, "holder"), Lock(clients(), path, "waiter")
    assert holder.acquire()
    result = queue.SimpleQueue()
    queued = threading.Event()
    holder.client.get_children(path, watch=lambda e: queued.set())     # the waiter's znode comes
    t = threading.Thread(target=lambda: result.put(waiter.acquire()))
    t.start()
    assert queued.wait(WAIT_S) and holder.contenders() == ["holder", "waiter"]
    waiter.cancel()
    assert result.get(timeout=WAIT_S) is False
    assert holder.contenders() == ["holder"]


def test_a_lock_suspended_by_a_restart_is_reported_and_taken_again(fresh_server, root_path):
    client = CoordClient(fresh_server.address, timeout=30).start()
    try:
        lost: queue.SimpleQueue = queue.SimpleQueue()
        lock = Lock(client, "/l", "me", on_lost=lost.put)
        assert lock.acquire()
        znode = lock.znode
        fresh_server.restart()
        assert lost.get(timeout=WAIT_S) == "connection suspended" and not lock.is_acquired
        assert lock.acquire(timeout=WAIT_S)             # the same place in the queue
        assert lock.znode == znode and lock.contenders() == ["me"]
    finally:
        client.close()

