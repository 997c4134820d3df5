"""The coordination tree replicated by Raft: real node processes on loopback, 3 and 5 nodes.

Faults are real: SIGKILL, SIGSTOP/SIGCONT, restarts. Every wait is on an event (a status, a
read) with a generous deadline; nothing asserts on time.
"""
from __future__ import annotations

import json
import threading

import pytest

from dcli.client import CoordClient
from dcli.cluster import status as status_rpc
from dcli.wire import errors

from tests.cluster_fixture import DEFAULT_SERVER_ARGS
from tests.conftest import run_cli

WAIT_S = 30.0


def leader_of(c, among=None) -> int | None:
    """The node every live node (of `among`) agrees leads, or None."""
    states = [s for s in c.status_all() if s.up and (among is None or s.id in among)]
    leaders = {s.leader_id for s in states}
    if len(leaders) == 1 and (lead := leaders.pop()) and any(s.id == lead and s.role == "leader" for s in states):
        return lead
    return None


def wait_leader(c, among=None) -> int:
    return c.wait_for(lambda: leader_of(c, among), WAIT_S, message="a leader all live nodes agree on")


def raw_status(c, node_id: int):
    """The node's whole Cluster.Status answer (log and snapshot indexes included)."""
    answer = status_rpc.query({node_id: c.address(node_id)})[node_id]
    assert not isinstance(answer, Exception), answer
    return answer


def wait_caught_up(c, follower: int, lead: int, message: str) -> None:
    """Until `follower` is up and has applied everything the leader has committed by now."""
    target = c.status(lead).commit_index
    c.wait_for(lambda: (s := c.status(follower)).up and s.applied_index >= target, WAIT_S, message=message)


def client_on(c, *node_ids, **kwargs) -> CoordClient:
    """A client whose server list is these nodes, in this order."""
    return CoordClient(",".join(c.address(i) for i in node_ids), **kwargs)


def retry(fn, attempts: int = 400):
    """Call fn until it stops failing with connection loss (the client's at-most-once policy
    reports a write whose node died; this test then checks what it can)."""
    for _ in range(attempts):
        try:
            return fn()
        except (errors.ConnectionLossError, errors.SessionMovedError, errors.UnavailableError,
                errors.OperationTimeoutError):
            continue
    raise AssertionError("never succeeded")


def test_writes_through_any_node_are_seen_by_every_node_after_sync(local_cluster):
    c = local_cluster(3)
    wait_leader(c)
    for i in c.ids:
        with client_on(c, i) as zk:
            zk.create(f"/via-{i}", str(i).encode())
    for i in c.ids:
        with client_on(c, i) as zk:
            zk.sync("/")
            assert sorted(n for n in zk.get_children("/") if n.startswith("via-")) == ["via-1", "via-2", "via-3"]
            assert zk.get("/via-2")[0] == b"2"
    roles = sorted(s.role for s in c.status_all())
    assert roles == ["follower", "follower", "leader"]


def test_a_session_sees_its_own_writes_in_order_on_a_follower(local_cluster):
    c = local_cluster(3)
    lead = wait_leader(c)
    follower = next(i for i in c.ids if i != lead)
    with client_on(c, follower) as zk:
        futures = []
        for i in range(50):
            futures.append(zk.create_async(f"/n{i}", b"x"))
            futures.append(zk.get_children_async("/"))
        for i in range(50):
            futures[2 * i].result(WAIT_S)
            children = futures[2 * i + 1].result(WAIT_S)
            assert f"n{i}" in children            # the read after a write sees that write


def test_leader_sigkill_during_a_stream_of_writes_loses_no_acknowledged_write(local_cluster):
    c = local_cluster(3)
    lead = wait_leader(c)
    acked: list[int] = []
    with client_on(c, *c.ids, delivery="exactly-once") as zk:
        zk.create("/w", b"")
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set() and i < 5000:
                try:
                    zk.create(f"/w/n{i:05d}", b"v")
                    acked.append(i)
                except errors.DcliError:
                    pass
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        c.wait_for(lambda: len(acked) >= 100, WAIT_S, message="100 writes before the kill")
        c.kill(lead)
        killed_at = len(acked)
        c.wait_for(lambda: len(acked) >= killed_at + 100, WAIT_S, message="writes resume after the kill")
        stop.set()
        t.join(WAIT_S)
        new_lead = wait_leader(c, among=[i for i in c.ids if i != lead])
        assert new_lead != lead
        zk.sync("/w")
        children = set(zk.get_children("/w"))
    assert {f"n{i:05d}" for i in acked} <= children
    # the killed node comes back and catches up with every acknowledged write
    c.start(lead)
    with client_on(c, lead) as zk:
        c.wait_for(lambda: retry(lambda: {f"n{i:05d}" for i in acked} <= set(zk.get_children("/w"))),
                   WAIT_S, message="the restarted node has every acknowledged write")


def test_a_paused_leader_steps_down_and_serves_nothing_stale(local_cluster):
    c = local_cluster(3)
    lead = wait_leader(c)
    with client_on(c, lead) as zk:
        zk.create("/k", b"old")
    c.pause(lead)
    try:
        others = [i for i in c.ids if i != lead]
        new_lead = wait_leader(c, among=others)
        with client_on(c, *others) as zk:
            retry(lambda: zk.set("/k", b"new"))
    finally:
        c.resume(lead)
    c.wait_for(lambda: c.status(lead).up and c.status(lead).role == "follower"
               and c.status(lead).leader_id == new_lead, WAIT_S, message="the old leader follows")
    with client_on(c, lead) as zk:
        retry(lambda: zk.sync("/k"))
        assert zk.get("/k")[0] == b"new"


def test_every_node_killed_and_restarted_keeps_every_acknowledged_write(local_cluster):
    c = local_cluster(3)
    wait_leader(c)
    with client_on(c, *c.ids) as zk:
        zk.create("/d", b"")
        for i in range(200):
            zk.create(f"/d/n{i}", b"%d" % i)
        zk.set("/d/n7", b"seven")
    for i in c.ids:
        c.kill(i)
    for i in c.ids:
        c.start(i)
    wait_leader(c)
    for i in c.ids:
        with client_on(c, i) as zk:
            retry(lambda: zk.sync("/d"))
            assert len(zk.get_children("/d")) == 200
            assert zk.get("/d/n7") == (b"seven", zk.exists("/d/n7"))


def test_a_paused_follower_catches_up_by_log_or_snapshot(local_cluster):
    c = local_cluster(3, server_args=(*DEFAULT_SERVER_ARGS, "--snapshot-every", "50"))
    lead = wait_leader(c)
    follower = next(i for i in c.ids if i != lead)
    c.pause(follower)
    try:
        with client_on(c, lead) as zk:
            zk.create("/s", b"")
            for i in range(300):
                zk.create(f"/s/n{i}", b"x")
            c.wait_for(lambda: c.status(lead).commit_index > 300 and c.status(lead).znodes > 300, WAIT_S)
    finally:
        c.resume(follower)
    wait_caught_up(c, follower, lead, "the follower applies everything it missed")
    with client_on(c, follower) as zk:
        assert len(zk.get_children("/s")) == 300


def test_a_session_its_ephemeral_and_its_watch_survive_the_death_of_its_node(local_cluster):
    c = local_cluster(3)
    lead = wait_leader(c)
    follower = next(i for i in c.ids if i != lead)
    others = [i for i in c.ids if i != follower]
    events = []
    fired = threading.Event()
    with client_on(c, follower, *others, timeout=10.0) as zk:
        zk.create("/eph", b"mine", ephemeral=True)
        zk.create("/watched", b"1")
        zk.get("/watched", watch=lambda e: (events.append(e), fired.set()))
        session = zk.session_id
        c.kill(follower)
        with client_on(c, *others) as other:
            retry(lambda: other.set("/watched", b"2"))       # while our client is away
        assert fired.wait(WAIT_S), "the watch fired after the client reconnected"
        assert events[0].path == "/watched"
        assert zk.session_id == session
        assert retry(lambda: zk.get("/eph"))[0] == b"mine"
    with client_on(c, *others) as other:
        c.wait_for(lambda: other.exists("/eph") is None, WAIT_S, message="the closed session's ephemeral goes")


@pytest.mark.slow
def test_five_nodes_keep_serving_with_two_down_and_a_new_leader(local_cluster):
    c = local_cluster(5)
    lead = wait_leader(c)
    down = [lead, next(i for i in c.ids if i != lead)]
    for i in down:
        c.kill(i)
    alive = [i for i in c.ids if i not in down]
    wait_leader(c, among=alive)
    with client_on(c, *alive) as zk:
        retry(lambda: zk.create("/five", b"ok"))
        zk.sync("/five")
        assert zk.get("/five")[0] == b"ok"
    for i in down:
        c.start(i)
    for i in down:
        with client_on(c, i) as zk:
            c.wait_for(lambda: retry(lambda: zk.exists("/five")) is not None, WAIT_S)


def test_membership_changes_one_node_at_a_time_and_leadership_moves_on_request(local_cluster):
    c = local_cluster(3)
    wait_leader(c)
    with client_on(c, *c.ids) as zk:
        for i in range(50):
            zk.create(f"/m{i}", b"x")
    added = c.manager.add_node()                       # node 4, started with --join
    assert added.id == 4
    c.wait_for(lambda: (s := c.status(4)).up and s.role == "follower" and s.znodes >= 50, WAIT_S,
               message="the new node follows and has caught up")
    assert c.manager.transfer_leader(4) == 4
    assert wait_leader(c) == 4
    with client_on(c, 4) as zk:
        zk.create("/written-under-4", b"")
    c.manager.remove_node(4)                           # the leader removes itself and steps down
    assert c.ids == [1, 2, 3]
    new_lead = wait_leader(c)
    assert new_lead != 4
    with client_on(c, *c.ids) as zk:
        retry(lambda: zk.sync("/"))
        assert zk.exists("/written-under-4") is not None
        retry(lambda: zk.create("/after-removal", b""))


def member_roles(c) -> dict[int, str]:
    listed = run_cli("cluster", "member", "list", "--server", c.servers, "-w", "json")
    assert listed.returncode == 0, listed.stderr
    return {m["node"]: m["role"] for m in map(json.loads, listed.stdout.decode().splitlines())}


def test_an_unreachable_new_member_is_a_learner_and_takes_no_quorum_away(local_cluster):
    """The review's attack: AddMember of an address nobody answers at. As a voter, node 4 made
    3 of 4 the quorum, so one more node down stopped every write; as a learner it counts for
    nothing until it catches up, which it never does."""
    c = local_cluster(3)
    lead = wait_leader(c)
    added = run_cli("cluster", "member", "add", "--server", c.servers, "4", "127.0.0.1:1", "-w", "json")
    assert added.returncode == 0, added.stderr
    assert "joins as a learner" in added.stderr.decode()
    roles = {m["node"]: m["role"] for m in map(json.loads, added.stdout.decode().splitlines())}
    assert roles == {1: "voter", 2: "voter", 3: "voter", 4: "learner"}
    follower = next(i for i in c.ids if i != lead)
    c.kill(follower)                                   # 2 of the 3 voters left: still a quorum
    with client_on(c, lead) as zk:
        for i in range(20):
            zk.create(f"/while-4-is-a-learner-{i}", b"x")
    assert member_roles(c)[4] == "learner" and wait_leader(c, among=set(c.ids) - {follower}) == lead
    c.start(follower)
    removed = run_cli("cluster", "member", "remove", "--server", c.servers, "4")
    assert removed.returncode == 0, removed.stderr
    assert member_roles(c) == {1: "voter", 2: "voter", 3: "voter"}
    with client_on(c, *c.ids) as zk:
        retry(lambda: zk.create("/after-removal", b""))


def test_a_single_node_stays_writable_after_adding_an_unreachable_member(local_cluster):
    c = local_cluster(1)
    wait_leader(c)
    added = run_cli("cluster", "member", "add", "--server", c.servers, "2", "127.0.0.1:1")
    assert added.returncode == 0, added.stderr
    assert added.stdout.decode().split("\n")[2].split()[:4] == ["2", "127.0.0.1:1", "127.0.0.1:1001", "learner"]
    with client_on(c, 1) as zk:
        zk.create("/still-writable", b"")              # 1 of 1 voter: committed at once
    assert c.status(1).role == "leader"


def test_member_commands_of_the_cli(local_cluster):
    c = local_cluster(3)
    lead = wait_leader(c)
    listed = run_cli("cluster", "member", "list", "--dir", str(c.directory), "-w", "json")
    assert listed.returncode == 0, listed.stderr
    members = [json.loads(line) for line in listed.stdout.decode().splitlines()]
    assert [(m["node"], m["address"], m["peer_address"]) for m in members] == \
        [(i, c.address(i), c.manager.node(i).peer_address) for i in c.ids]
    assert {m["role"] for m in members} == {"voter"}
    table = run_cli("cluster", "member", "list", "--dir", str(c.directory))
    assert table.stdout.decode().split("\n")[0].split() == ["NODE", "ADDRESS", "PEER", "ROLE", "REACHABLE", "MATCH"]
    other = next(i for i in c.ids if i != lead)
    moved = run_cli("cluster", "transfer-leader", str(other), "--server", c.servers)
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.decode().strip() == f"node {other} leads now"
    assert wait_leader(c) == other
    again = run_cli("cluster", "member", "add", "--server", c.servers, str(lead), "127.0.0.1:1")
    assert again.returncode == 4                      # already a member: a conflict, one line
    assert again.stderr.decode().count("\n") == 1 and "already a voter" in again.stderr.decode()
    bad = run_cli("cluster", "member", "add", "--server", c.servers, "9", "nowhere")
    assert bad.returncode == 2 and "expected host:port" in bad.stderr.decode()


def test_a_node_cut_off_from_the_majority_stops_serving_until_it_is_back(local_cluster):
    c = local_cluster(3)
    lead = wait_leader(c)
    survivor = next(i for i in c.ids if i != lead)
    for i in c.ids:
        if i != survivor:
            c.kill(i)

    def refused():
        try:
            with CoordClient(c.address(survivor), dial_timeout=1.0):
                return None
        except errors.DcliError as e:
            return str(e) if "no leader" in str(e) else None    # until then it waits for one

    assert "cannot reach a majority" in c.wait_for(refused, WAIT_S, message="the lone node refuses clients")
    c.start(lead)
    wait_leader(c, among=[survivor, lead])
    with client_on(c, survivor) as zk:
        retry(lambda: zk.create("/majority-again", b""))


def kill_a_follower(c) -> tuple[int, int, int]:
    """SIGKILL a follower; returns (the leader, that follower, the index it had applied). Killed,
    not paused: a paused node's socket buffers would still take in the log."""
    lead = wait_leader(c)
    follower = next(i for i in c.ids if i != lead)
    behind = c.status(follower).applied_index
    c.kill(follower)
    return lead, follower, behind


def test_a_follower_behind_the_latest_snapshot_catches_up_from_the_log_kept_after_the_one_before(local_cluster):
    c = local_cluster(3, server_args=(*DEFAULT_SERVER_ARGS, "--snapshot-every", "50"))
    lead, follower, behind = kill_a_follower(c)
    with client_on(c, lead) as zk:
        zk.create("/tail", b"")
        for i in range(200):                # until the leader snapshots past the follower
            zk.create(f"/tail/n{i}", b"x")
            if raw_status(c, lead).snapshot_index > behind:
                break
    assert raw_status(c, lead).snapshot_index > behind
    assert raw_status(c, lead).log_first_index <= behind + 1     # what the follower lacks is kept
    c.start(follower)
    wait_caught_up(c, follower, lead, "the follower applies everything it missed")
    assert "loading a snapshot" not in (c.directory / f"node-{follower}.log").read_text()
    with client_on(c, follower) as zk:
        retry(lambda: zk.sync("/tail"))
        assert len(zk.get_children("/tail")) == i + 1


def test_a_snapshot_larger_than_a_client_frame_reaches_a_lagging_follower(local_cluster):
    c = local_cluster(3, server_args=(*DEFAULT_SERVER_ARGS, "--snapshot-every", "5"))
    lead, follower, behind = kill_a_follower(c)
    with client_on(c, lead) as zk:
        for i in range(12):                              # 12 x 900 KB: a snapshot over 10 MB
            zk.create(f"/big{i}", bytes([i]) * 900_000)
    # the leader has compacted away what the follower lacks: only a snapshot can catch it up
    c.wait_for(lambda: raw_status(c, lead).log_first_index > behind + 1, WAIT_S,
               message="the leader compacts its log past the missing follower")
    c.start(follower)
    wait_caught_up(c, follower, lead, "the follower loads the big snapshot")
    with client_on(c, follower) as zk:
        assert zk.get("/big11")[0] == bytes([11]) * 900_000
    assert "loading a snapshot" in (c.directory / f"node-{follower}.log").read_text()
