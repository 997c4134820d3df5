"""Where the Ready loop's fsync runs: on the event loop while the disk is fast, in a thread
while it is slow, and back on the loop once a probe finds it fast again; and what leaves while
it runs."""
import asyncio
import threading
import time
import types

from dcli_server.cluster import replica as replica_module
from dcli_server.cluster.replica import INLINE_FSYNC_S, PROBE_FSYNC_EVERY, Replica, ReplicaConfig
from dcli_server.consensus import Message, MessageType as MT, decode, encode

FAST = INLINE_FSYNC_S / 20
SLOW = INLINE_FSYNC_S * 5
WAIT_S = 30.0


def test_fsync_runs_on_the_loop_while_fast_in_a_thread_while_slow(tmp_path, monkeypatch):
    replica = Replica(ReplicaConfig(node_id=1, peers={1: "127.0.0.1:1"}, directory=tmp_path),
                      apply=lambda snapshot, entries: None, on_state=lambda soft: None)
    clock = [0.0]
    cost = [FAST]
    on_loop: list[bool] = []
    loop_thread = threading.get_ident()

    def sync() -> None:                 # the disk: each fsync moves the replica's clock by `cost`
        on_loop.append(threading.get_ident() == loop_thread)
        clock[0] += cost[0]

    monkeypatch.setattr(replica.storage, "sync", sync)
    monkeypatch.setattr(replica_module, "time", types.SimpleNamespace(
        perf_counter=lambda: clock[0], monotonic=time.monotonic))

    async def syncs(n: int) -> list[bool]:
        del on_loop[:]
        loop = asyncio.get_running_loop()
        for _ in range(n):
            await replica._sync(loop)
        return list(on_loop)

    async def scenario() -> None:
        assert await syncs(10) == [True] * 10
        cost[0] = SLOW
        # the first slow fsync is timed on the loop; from then on they go to a thread, except
        # every PROBE_FSYNC_EVERY-th, which is timed on the loop again
        assert await syncs(2 * PROBE_FSYNC_EVERY + 3) == (
            [True] + [False] * PROBE_FSYNC_EVERY + [True] + [False] * PROBE_FSYNC_EVERY + [True])
        cost[0] = FAST
        # the next probe finds the disk fast, and the fsyncs after it stay on the loop
        assert await syncs(2 * PROBE_FSYNC_EVERY) == [False] * PROBE_FSYNC_EVERY + [True] * PROBE_FSYNC_EVERY

    asyncio.run(scenario())
    replica.storage.close()


def test_a_leader_heartbeats_while_its_fsync_runs_in_a_thread(tmp_path, monkeypatch):
    """A slow disk must not silence the leader: its followers' lease would run out and they would
    elect whoever asks first (a node that just restarted, in the broker benchmark)."""
    peers = {1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3"}
    replica = Replica(ReplicaConfig(node_id=1, peers=peers, directory=tmp_path),
                      apply=lambda snapshot, entries: None, on_state=lambda soft: None)
    replica.load()
    sent: list[Message] = []
    monkeypatch.setattr(replica.transport, "send", lambda to, data: sent.append(decode(data)))
    gate, entered, left = threading.Event(), threading.Event(), threading.Event()
    disk_sync = replica.storage.sync
    stuck = [False]

    def sync() -> None:                 # the disk: stuck until the test lets it go
        if stuck[0]:
            entered.set()
            gate.wait(2 * WAIT_S)
            left.set()
        disk_sync()

    monkeypatch.setattr(replica.storage, "sync", sync)

    async def until(predicate) -> None:
        deadline = time.monotonic() + WAIT_S
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)

    def answer(kind: MT, answer_kind: MT) -> None:
        asked = next(m for m in sent if m.type == kind and m.to == 2)
        replica.step(encode(Message(answer_kind, from_=2, to=1, term=asked.term)))

    async def scenario() -> None:
        replica._kick = asyncio.Event()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(replica._ticker()), loop.create_task(replica._ready_loop())]
        try:
            await until(lambda: any(m.type == MT.PRE_VOTE for m in sent))     # node 2 votes for it
            answer(MT.PRE_VOTE, MT.PRE_VOTE_RESP)
            await until(lambda: any(m.type == MT.VOTE for m in sent))
            answer(MT.VOTE, MT.VOTE_RESP)
            await until(lambda: replica.is_leader)
            replica._fsync_cost_s = 1.0         # a slow disk: the fsyncs go to a thread
            stuck[0] = True
            replica.propose(b"x")
            await until(entered.is_set)
            since = len(sent)
            await until(lambda: all(sum(m.type == MT.HEARTBEAT and m.to == p for m in sent[since:]) >= 3
                                    for p in (2, 3)))
            assert not left.is_set()            # all of them while the one fsync was stuck
        finally:
            gate.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(scenario())
    replica.storage.close()


def test_a_commit_hint_names_no_entry_the_leader_has_not_persisted(tmp_path):
    """Beside answers to forwarded requests: a follower that applied an entry only the leader's
    pending write holds could see it vanish if the leader's machine lost power."""
    replica = Replica(ReplicaConfig(node_id=1, peers={1: "127.0.0.1:1"}, directory=tmp_path),
                      apply=lambda snapshot, entries: None, on_state=lambda soft: None)
    replica.load()
    raft = replica.raft
    for _ in range(3 * raft.cfg.election_tick):
        raft.tick()
    raft.advance(raft.ready())
    persisted = raft.log.last_index()
    assert replica.commit_hint() == (persisted, raft.term)
    raft.propose(b"x")                       # a cluster of one counts its own copy at once
    assert raft.log.committed == persisted + 1
    assert replica.commit_hint() == (persisted, raft.term)
    rd = raft.ready()
    raft.advance(rd)
    assert replica.commit_hint() == (persisted + 1, raft.term)
    replica.storage.close()
