"""The group coordinator as a state machine driven by an explicit clock: joins and generations,
the initial rebalance delay, sync, heartbeats, session and rebalance timeouts, leaving, offset
commits, and the admin calls."""
from __future__ import annotations

import itertools

import pytest

from dcli.wire.consumer_protocol import Subscription, encode_subscription
from dcli_server.broker.groups import (
    GroupConfig, GroupCoordinator, GroupState, JoinRequest, JoinResult, MemberInfo, SyncResult,
)
from dcli_server.broker.offsets import CommittedOffsets, OffsetAndMetadata, OffsetCommit

NONE, ILLEGAL_GENERATION, INCONSISTENT, INVALID_GROUP = 0, 22, 23, 24
UNKNOWN_MEMBER, INVALID_SESSION, REBALANCING = 25, 26, 27
NON_EMPTY, NOT_FOUND, MEMBER_ID_REQUIRED, METADATA_TOO_LARGE = 68, 69, 79, 12
SESSION, REBALANCE = 10_000, 30_000
SUB = encode_subscription(Subscription(["chat"]))
RANGE = (("range", SUB),)


class Groups:
    """A coordinator, a clock, and the replies it delivered, by waiter."""

    def __init__(self, config: GroupConfig | None = None, offsets: CommittedOffsets | None = None):
        ids = (f"u{i}" for i in itertools.count(1))
        self.c = GroupCoordinator(config or GroupConfig(initial_rebalance_delay_ms=0), offsets,
                                  new_uuid=lambda: next(ids))
        self.now = 0
        self.replies: dict[str, JoinResult | SyncResult] = {}
        self._waiters = itertools.count(1)

    def collect(self) -> None:
        for waiter, result in self.c.drain():
            assert waiter not in self.replies, "a waiter answered twice"
            self.replies[waiter] = result

    def join(self, client: str = "c", member_id: str = "", group: str = "g", *,
             protocols=RANGE, session: int = SESSION, rebalance: int = REBALANCE,
             protocol_type: str = "consumer", **kwargs) -> str:
        waiter = f"join-{next(self._waiters)}"
        self.c.join(self.now, JoinRequest(group, member_id, client, "/127.0.0.1", session,
                                          rebalance, protocol_type, protocols, **kwargs), waiter)
        self.collect()
        return waiter

    def sync(self, member_id: str, generation: int, assignments=None, group: str = "g") -> str:
        waiter = f"sync-{next(self._waiters)}"
        self.c.sync(self.now, group, generation, member_id, assignments or {}, waiter)
        self.collect()
        return waiter

    def heartbeat(self, member_id: str, generation: int, group: str = "g") -> int:
        result = self.c.heartbeat(self.now, group, generation, member_id)
        self.collect()
        return result.error_code

    def leave(self, *member_ids: str, group: str = "g"):
        result = self.c.leave(self.now, group, member_ids)
        self.collect()
        return result

    def tick(self, now: int):
        self.now = now
        report = self.c.tick(now)
        self.collect()
        return report

    def answered(self, waiter: str) -> bool:
        return waiter in self.replies

    def state(self, group: str = "g") -> str:
        return self.c.state_of(group).value


def stable(g: Groups, clients=("a", "b", "c")) -> tuple[list[str], int]:
    """A Stable group whose members all joined within the initial delay."""
    waiters = [g.join(client) for client in clients]
    g.tick(g.now + 2 * g.c.config.initial_rebalance_delay_ms)  # the delay, extended once
    results = [g.replies[w] for w in waiters]
    ids = [r.member_id for r in results]
    generation = results[0].generation_id
    leader = results[0].leader
    g.sync(leader, generation, {m: m.encode() for m in ids})
    for m in ids:
        if m != leader:
            g.sync(m, generation)
    assert g.state() == "Stable"
    return ids, generation


@pytest.fixture
def delayed() -> Groups:
    return Groups(GroupConfig(initial_rebalance_delay_ms=3000))


# -- joining --------------------------------------------------------------------------------------


def test_three_members_join_one_generation_leader_gets_members_sync_distributes(delayed):
    g = delayed
    waiters = [g.join(client) for client in ("a", "b", "c")]
    g.tick(2999)
    assert not any(g.answered(w) for w in waiters) and g.state() == "PreparingRebalance"
    g.tick(3000)  # members arrived during the delay: Kafka waits one delay more
    assert not any(g.answered(w) for w in waiters)
    assert g.c.next_deadline_ms() == 6000
    g.tick(6000)
    a, b, c = (g.replies[w] for w in waiters)
    assert [r.member_id for r in (a, b, c)] == ["a-u1", "b-u2", "c-u3"]
    assert {r.generation_id for r in (a, b, c)} == {1}
    assert {r.leader for r in (a, b, c)} == {"a-u1"}
    assert {r.protocol_name for r in (a, b, c)} == {"range"}
    assert a.members == tuple(MemberInfo(m, m[0], "/127.0.0.1", SUB) for m in ("a-u1", "b-u2", "c-u3"))
    assert b.members == () and c.members == ()
    assert g.state() == "CompletingRebalance"

    # Followers that sync before the leader wait for its assignment.
    sb = g.sync("b-u2", 1)
    assert not g.answered(sb)
    sa = g.sync("a-u1", 1, {"a-u1": b"A", "b-u2": b"B"})
    assert g.replies[sa] == SyncResult(assignment=b"A")
    assert g.replies[sb] == SyncResult(assignment=b"B")
    assert g.state() == "Stable"
    # The leader left c out: c gets an empty assignment.
    assert g.replies[g.sync("c-u3", 1)] == SyncResult(assignment=b"")


def test_initial_delay_is_extended_while_members_arrive_within_the_rebalance_timeout(delayed):
    g = delayed
    first = g.join("a", rebalance=7000)
    g.tick(2000)
    second = g.join("b", rebalance=7000)
    g.tick(3000)  # a member arrived during the delay: wait min(3000, 7000 - 3000) more
    assert not g.answered(first)
    g.tick(5000)
    third = g.join("c", rebalance=7000)
    g.tick(6000)
    assert not g.answered(first)
    g.tick(7000)  # the rebalance timeout bounds the waiting
    assert {g.replies[w].generation_id for w in (first, second, third)} == {1}


def test_zero_delay_completes_the_first_join_at_once_and_the_next_member_rebalances():
    g = Groups()
    first = g.join("a")
    a = g.replies[first]
    assert (a.generation_id, a.leader, a.member_id) == (1, "a-u1", "a-u1")
    second = g.join("b")
    assert not g.answered(second) and g.state() == "PreparingRebalance"
    assert g.heartbeat("a-u1", 1) == REBALANCING
    rejoin = g.join("a", "a-u1")
    assert g.replies[rejoin].generation_id == g.replies[second].generation_id == 2
    assert g.replies[rejoin].leader == "a-u1"
    assert len(g.replies[rejoin].members) == 2


def test_first_join_answers_the_member_with_a_generated_id_of_its_client_id():
    g = Groups()
    w = g.join("console-consumer")
    assert g.replies[w].member_id == "console-consumer-u1"


def test_member_id_required_flow():
    g = Groups()
    w = g.join("a", require_known_member_id=True)
    r = g.replies[w]
    assert (r.error_code, r.member_id, r.generation_id) == (MEMBER_ID_REQUIRED, "a-u1", -1)
    assert "valid member id" in r.error_message
    ok = g.join("a", "a-u1", require_known_member_id=True)
    assert (g.replies[ok].error_code, g.replies[ok].generation_id) == (NONE, 1)


def test_a_pending_member_id_expires_after_its_session_timeout():
    g = Groups()
    w = g.join("a", require_known_member_id=True)
    g.tick(SESSION)
    late = g.join("a", g.replies[w].member_id)
    assert g.replies[late].error_code == UNKNOWN_MEMBER


def test_known_member_of_unknown_group_and_bad_requests():
    g = Groups()
    assert g.replies[g.join("a", "a-zzz")].error_code == UNKNOWN_MEMBER
    assert g.replies[g.join("a", group="")].error_code == INVALID_GROUP
    r = g.replies[g.join("a", session=5999)]
    assert r.error_code == INVALID_SESSION and "group.min.session.timeout.ms" in r.error_message
    assert g.replies[g.join("a", session=1_800_001)].error_code == INVALID_SESSION
    assert g.replies[g.join("a", session=6000)].error_code == NONE
    assert g.replies[g.join("b", group="h", session=1_800_000)].error_code == NONE


def test_inconsistent_group_protocol():
    g = Groups()
    g.join("a", protocols=(("range", SUB),))
    for kwargs in ({"protocols": (("roundrobin", SUB),)}, {"protocol_type": "connect"},
                   {"protocols": ()}):
        r = g.replies[g.join("b", **kwargs)]
        assert r.error_code == INCONSISTENT
        assert r.error_message.startswith("The group member's supported protocols are incompatible")
    assert g.replies[g.join("x", group="new", protocols=())].error_code == INCONSISTENT
    assert g.state("new") == "Dead"  # a refused first join leaves no group behind


def test_protocol_selection_by_vote_in_the_members_order_of_preference(delayed):
    g = delayed
    both, reverse = (("range", SUB), ("roundrobin", SUB)), (("roundrobin", SUB), ("range", SUB))
    w = [g.join("a", protocols=both), g.join("b", protocols=reverse), g.join("c", protocols=reverse)]
    g.tick(6000)
    assert {g.replies[x].protocol_name for x in w} == {"roundrobin"}

    h = Groups(GroupConfig(initial_rebalance_delay_ms=3000))
    w = [h.join("a", protocols=both), h.join("b", protocols=reverse)]
    h.tick(6000)
    assert {h.replies[x].protocol_name for x in w} == {"range"}  # a tie: the first member's vote

    k = Groups(GroupConfig(initial_rebalance_delay_ms=3000))
    w = [k.join("a", protocols=both), k.join("b", protocols=(("roundrobin", SUB),))]
    k.tick(6000)
    assert {k.replies[x].protocol_name for x in w} == {"roundrobin"}  # the only common one


def test_a_retried_join_while_completing_gets_the_same_answer(delayed):
    g = delayed
    first = [g.join("a"), g.join("b")]
    g.tick(6000)
    again = g.join("a", "a-u1")
    assert g.replies[again] == g.replies[first[0]]
    assert g.state() == "CompletingRebalance"


def test_leader_rejoining_a_stable_group_triggers_a_rebalance_a_follower_does_not(delayed):
    g = delayed
    (a, b, c), gen = stable(g)
    w = g.join("b", b)
    assert g.replies[w].generation_id == gen and g.state() == "Stable"
    w = g.join("a", a)
    assert not g.answered(w) and g.state() == "PreparingRebalance"


def test_changed_subscription_rebalances(delayed):
    g = delayed
    (a, b, c), gen = stable(g)
    other = (("range", encode_subscription(Subscription(["chat", "orders"]))),)
    wb = g.join("b", b, protocols=other)
    assert not g.answered(wb) and g.state() == "PreparingRebalance"
    wa, wc = g.join("a", a), g.join("c", c)
    leader = g.replies[wa]
    assert leader.generation_id == gen + 1 and g.replies[wb].generation_id == gen + 1
    assert dict((m.member_id, m.metadata) for m in leader.members)[b] == other[0][1]
    assert g.answered(wc)


# -- session expiry, rebalance timeout, leaving ------------------------------------------------------


def test_session_expiry_rebalances_and_the_others_rejoin_to_a_new_generation(delayed):
    g = delayed
    (a, b, c), gen = stable(g)
    start = g.now
    g.now = start + 4000
    assert g.heartbeat(a, gen) == NONE and g.heartbeat(b, gen) == NONE
    assert g.c.next_deadline_ms() == start + SESSION  # c's
    report = g.tick(start + SESSION - 1)
    assert report.expired_members == () and g.state() == "Stable"
    report = g.tick(start + SESSION)
    assert report.expired_members == (("g", c),)
    assert g.state() == "PreparingRebalance"
    assert g.heartbeat(a, gen) == REBALANCING
    assert g.heartbeat(c, gen) == UNKNOWN_MEMBER
    wa = g.join("a", a)
    assert not g.answered(wa)
    wb = g.join("b", b)
    ra, rb = g.replies[wa], g.replies[wb]
    assert ra.generation_id == rb.generation_id == gen + 1
    assert [m.member_id for m in ra.members] == [a, b] and rb.members == ()
    assert g.heartbeat(a, gen) == ILLEGAL_GENERATION
    assert g.heartbeat(a, gen + 1) == NONE  # heartbeats are fine while completing


def test_members_that_do_not_rejoin_within_the_rebalance_timeout_are_removed(delayed):
    g = delayed
    (a, b, c), gen = stable(g)
    t = g.now
    w = g.join("a", a)  # the leader rejoins: a rebalance
    g.now = t + 1000
    wb = g.join("b", b)
    for later in (5000, 14000, 23000, REBALANCE - 1):
        g.now = t + later
        assert g.heartbeat(c, gen) == REBALANCING  # alive, but not rejoining
    g.tick(t + REBALANCE - 1)
    assert not g.answered(w) and not g.answered(wb)
    g.tick(t + REBALANCE)
    # b waited longer than its session timeout without heartbeats: a member with a JoinGroup
    # in flight does not expire.
    assert g.replies[w].generation_id == g.replies[wb].generation_id == gen + 1
    assert [m.member_id for m in g.replies[w].members] == [a, b]
    assert g.heartbeat(c, gen + 1) == UNKNOWN_MEMBER


def test_a_new_member_waits_at_most_five_minutes_for_a_rebalance():
    g = Groups()
    w1 = g.join("a", rebalance=600_000)
    a = g.replies[w1].member_id
    g.sync(a, 1, {a: b""})
    w2 = g.join("b", rebalance=600_000)  # a rebalance that a never rejoins
    for t in range(9000, 300_000, 9000):
        g.now = t
        assert g.heartbeat(a, 1) == REBALANCING
    g.tick(299_999)
    assert not g.answered(w2)
    g.tick(300_000)  # Kafka's NewMemberJoinTimeoutMs
    assert g.replies[w2].error_code == UNKNOWN_MEMBER
    assert g.heartbeat(a, 1) == REBALANCING


def test_a_follower_waiting_for_the_leaders_sync_does_not_expire(delayed):
    g = delayed
    for client in ("a", "b"):
        g.join(client)
    g.tick(6000)
    sb = g.sync("b-u2", 1)
    for t in (15_000, 24_000):  # past b's session timeout; the leader keeps its own alive
        g.now = t
        assert g.heartbeat("a-u1", 1) == NONE
    g.tick(25_000)
    g.sync("a-u1", 1, {"b-u2": b"B"})
    assert g.replies[sb] == SyncResult(assignment=b"B")


def test_members_that_never_sync_are_removed_after_the_rebalance_timeout(delayed):
    g = delayed
    for client in ("a", "b"):
        g.join(client)
    g.tick(6000)
    sa = g.sync("a-u1", 1, {"a-u1": b"A", "b-u2": b"B"})
    assert g.replies[sa].assignment == b"A" and g.state() == "Stable"
    for t in range(6000 + 9000, 6000 + REBALANCE, 9000):
        g.now = t
        assert g.heartbeat("a-u1", 1) == NONE
        assert g.heartbeat("b-u2", 1) == NONE  # heartbeats do not make up for the missing sync
    report = g.tick(6000 + REBALANCE)
    assert ("g", "b-u2") in report.expired_members
    assert g.state() == "PreparingRebalance"


def test_leave_rebalances_at_once_and_the_last_leaving_empties_the_group(delayed):
    g = delayed
    (a, b, c), gen = stable(g)
    result = g.leave(a)
    assert (result.error_code, result.members) == (NONE, ((a, result.members[0][1]),))
    assert g.state() == "PreparingRebalance"
    wb, wc = g.join("b", b), g.join("c", c)
    rb = g.replies[wb]
    assert rb.generation_id == gen + 1 and rb.leader == b  # the leader left: the next in join order
    assert g.replies[wc].leader == b
    assert g.leave("zzz").error_code == UNKNOWN_MEMBER
    assert g.leave(b, c).error_code == NONE
    assert g.state() == "Empty"
    assert g.c.describe(["g"])[0].generation_id == gen + 2
    assert g.leave(b, group="nope").error_code == UNKNOWN_MEMBER


def test_a_new_member_joining_while_completing_sends_waiting_followers_back(delayed):
    g = delayed
    for client in ("a", "b"):
        g.join(client)
    g.tick(6000)
    sb = g.sync("b-u2", 1)
    wc = g.join("c")
    assert g.replies[sb].error_code == REBALANCING
    assert g.state() == "PreparingRebalance"
    assert g.replies[g.sync("a-u1", 1, {})].error_code == REBALANCING
    assert not g.answered(wc)


def test_sync_errors(delayed):
    g = delayed
    (a, b, c), gen = stable(g)
    assert g.replies[g.sync(a, gen + 1)].error_code == ILLEGAL_GENERATION
    assert g.replies[g.sync("who", gen)].error_code == UNKNOWN_MEMBER
    assert g.replies[g.sync(a, gen, group="nope")].error_code == UNKNOWN_MEMBER
    assert g.replies[g.sync(a, gen, group="")].error_code == INVALID_GROUP
    assert g.replies[g.sync(b, gen)] == SyncResult(assignment=b.encode())  # stable: its assignment


def test_heartbeat_errors_and_states(delayed):
    g = delayed
    assert g.heartbeat("a", 0, group="nope") == UNKNOWN_MEMBER
    assert g.heartbeat("a", 0, group="") == INVALID_GROUP
    (a, b, c), gen = stable(g)
    assert g.heartbeat(a, gen) == NONE
    assert g.heartbeat(a, gen - 1) == ILLEGAL_GENERATION
    assert g.heartbeat("stranger", gen) == UNKNOWN_MEMBER
    result = g.c.heartbeat(g.now, "g", gen, "stranger")
    assert result.error_message == "The coordinator is not aware of this member."


def test_a_pending_join_of_a_removed_member_is_answered():
    g = Groups()
    a = g.replies[g.join("a")].member_id
    w = g.join("b")  # b waits for a to rejoin
    g.leave("b-u2")
    assert g.replies[w].error_code == UNKNOWN_MEMBER
    assert g.state() == "PreparingRebalance"  # still waiting for a
    assert g.heartbeat(a, 1) == REBALANCING


def test_state_transitions(delayed):
    g = delayed
    seen = [g.state()]
    g.join("a")
    seen.append(g.state())
    g.tick(3000)  # alone: no extension
    seen.append(g.state())
    g.sync("a-u1", 1, {"a-u1": b""})
    seen.append(g.state())
    g.leave("a-u1")
    seen.append(g.state())
    assert seen == ["Dead", "PreparingRebalance", "CompletingRebalance", "Stable", "Empty"]
    assert g.c.next_deadline_ms() is not None
    g.c.delete_groups(g.now, ["g"])
    assert g.state() == "Dead"


# -- offsets ------------------------------------------------------------------------------------------


class MemoryOffsets(CommittedOffsets):
    """The offset store interface over a dict: `durable` is what the last flush kept, what a
    store opened again (after a restart) starts from. The coordinator's rules are under test
    here; the tree's store is tested against a real server (test_tree_offsets.py)."""

    def __init__(self, durable: dict | None = None):
        self.durable = {g: dict(o) for g, o in (durable or {}).items()}
        self._offsets = {g: dict(o) for g, o in self.durable.items()}

    def commit(self, group_id, offsets, now_ms):
        for c in offsets:
            self._offsets.setdefault(group_id, {})[(c.topic, c.partition)] = OffsetAndMetadata(
                c.offset, c.metadata, now_ms, c.leader_epoch)

    def delete_offsets(self, group_id, partitions, now_ms):
        known = self._offsets.get(group_id, {})
        gone = [tp for tp in dict.fromkeys(partitions) if tp in known]
        for tp in gone:
            del known[tp]
        if not known:
            self._offsets.pop(group_id, None)
        return len(gone)

    def flush(self):
        self.durable = {g: dict(o) for g, o in self._offsets.items()}


@pytest.fixture
def store():
    return MemoryOffsets()


def commit(g: Groups, member: str, generation: int, group: str = "g", metadata: str = ""):
    return [r.error_code for r in g.c.commit_offsets(
        g.now, group, generation, member, [OffsetCommit("chat", 0, 5, metadata)])]


def test_commits_are_checked_against_the_generation(store):
    g = Groups(GroupConfig(initial_rebalance_delay_ms=3000), store)
    (a, b, c), gen = stable(g)
    assert commit(g, a, gen - 1) == [ILLEGAL_GENERATION]
    assert commit(g, "stranger", gen) == [UNKNOWN_MEMBER]
    assert commit(g, "", -1) == [UNKNOWN_MEMBER]  # from outside a group with members
    assert store.fetch("g") == {}
    assert commit(g, a, gen) == [NONE]
    assert store.fetch("g")[("chat", 0)].offset == 5
    assert commit(g, b, gen, metadata="x" * 4097) == [METADATA_TOO_LARGE]
    assert g.c.fetch_offsets("g", [("chat", 0), ("chat", 1)]) == [
        ("chat", 0, 5, ""), ("chat", 1, -1, "")]

    g.join("a", a)  # a rebalance: commits of the current generation are still allowed
    assert commit(g, b, gen) == [NONE]


def test_commit_while_completing_is_rebalance_in_progress(store):
    g = Groups(GroupConfig(initial_rebalance_delay_ms=0), store)
    g.join("a")
    assert commit(g, "a-u1", 1) == [REBALANCING]


def test_commits_from_outside_only_into_an_empty_or_unknown_group(store):
    g = Groups(GroupConfig(initial_rebalance_delay_ms=0), store)
    assert commit(g, "", -1, group="reset") == [NONE]  # kafka-consumer-groups --reset-offsets
    assert g.c.list_groups() == [("reset", "", "Empty")]
    assert commit(g, "x-1", 3, group="unknown") == [ILLEGAL_GENERATION]
    a = g.replies[g.join("a")].member_id
    g.sync(a, 1, {a: b""})
    assert commit(g, "", -1) == [UNKNOWN_MEMBER]
    g.leave(a)
    assert g.state() == "Empty"
    assert commit(g, "", -1) == [NONE]
    assert commit(g, a, 2) == [UNKNOWN_MEMBER]


def test_describe_list_and_delete(store):
    g = Groups(GroupConfig(initial_rebalance_delay_ms=3000), store)
    (a, b, c), gen = stable(g)
    d = g.c.describe(["g", "missing"])
    assert (d[0].state, d[0].protocol_type, d[0].protocol, d[0].generation_id, d[0].leader) == (
        "Stable", "consumer", "range", gen, a)
    assert d[0].members[1] == MemberInfo(b, "b", "/127.0.0.1", SUB, b.encode())
    assert (d[1].state, d[1].error_code, d[1].members) == ("Dead", NONE, ())

    g.join("a", a)
    d = g.c.describe(["g"])[0]
    assert (d.state, d.protocol) == ("PreparingRebalance", "")
    assert {m.metadata for m in d.members} == {b""} and {m.assignment for m in d.members} == {b""}

    commit(g, "", -1, group="idle")
    assert g.c.list_groups() == [("g", "consumer", "PreparingRebalance"), ("idle", "", "Empty")]
    assert g.c.list_groups(states=["empty"]) == [("idle", "", "Empty")]

    results = dict(g.c.delete_groups(g.now, ["g", "idle", "missing"]))
    assert results["g"].error_code == NON_EMPTY and results["g"].error_message == "The group is not empty."
    assert results["idle"].error_code == NONE
    assert (results["missing"].error_code, results["missing"].error_message) == (
        NOT_FOUND, "The group id does not exist.")
    assert g.state("idle") == "Dead" and store.fetch("idle") == {}
    assert dict(g.c.delete_groups(g.now, ["idle"]))["idle"].error_code == NOT_FOUND


def test_groups_with_offsets_come_back_empty_after_a_restart():
    store = MemoryOffsets()
    g = Groups(GroupConfig(initial_rebalance_delay_ms=0), store)
    a = g.replies[g.join("a")].member_id
    g.sync(a, 1, {a: b""})
    assert commit(g, a, 1) == [NONE]
    store.flush()
    again = Groups(offsets=MemoryOffsets(store.durable))
    assert again.c.list_groups() == [("g", "", "Empty")]
    assert again.heartbeat(a, 1) == UNKNOWN_MEMBER
    assert again.c.fetch_offsets("g") == [("chat", 0, 5, "")]


def test_offsets_of_an_empty_group_expire_and_the_group_goes(store):
    day = 24 * 60 * 60 * 1000
    g = Groups(GroupConfig(initial_rebalance_delay_ms=0), store)
    a = g.replies[g.join("a")].member_id
    g.sync(a, 1, {a: b""})
    assert commit(g, a, 1) == [NONE]
    g.now = 5000
    g.leave(a)  # Empty from 5000
    g.c.cleanup(7 * day + 4999)
    assert store.has_offsets("g") and g.state() == "Empty"
    expired, removed = g.c.cleanup(7 * day + 5000)
    assert (expired, removed) == (1, ["g"])
    assert g.state() == "Dead" and not store.has_offsets("g")


def test_tick_runs_the_cleanup_every_check_interval(store):
    g = Groups(GroupConfig(initial_rebalance_delay_ms=0, offsets_retention_ms=1000,
                           offsets_retention_check_interval_ms=600_000), store)
    commit(g, "", -1, group="old")
    busy = g.replies[g.join("a", group="busy", session=1_000_000, rebalance=1_000_000)].member_id
    g.sync(busy, 1, {}, group="busy")
    assert g.tick(0).removed_groups == ()
    assert g.c.next_deadline_ms() is not None
    assert g.tick(599_999).expired_offsets == 0
    report = g.tick(600_000)
    assert (report.expired_offsets, report.removed_groups) == (1, ("old",))
    assert g.state("busy") != "Dead"  # a group with members is never removed


def test_stable_groups_keep_offsets_of_subscribed_topics(store):
    g = Groups(GroupConfig(initial_rebalance_delay_ms=0, offsets_retention_ms=1000), store)
    a = g.replies[g.join("a")].member_id
    g.sync(a, 1, {a: b""})
    g.c.commit_offsets(0, "g", 1, a, [OffsetCommit("chat", 0, 1), OffsetCommit("old-topic", 0, 1)])
    g.now = 5000
    g.heartbeat(a, 1)
    assert g.c.cleanup(5000) == (1, [])
    assert set(store.fetch("g")) == {("chat", 0)}


def test_config_from_kafka_properties():
    config = GroupConfig.from_properties({"group.initial.rebalance.delay.ms": "0",
                                          "offsets.retention.minutes": "1",
                                          "group.min.session.timeout.ms": 100})
    assert (config.initial_rebalance_delay_ms, config.offsets_retention_ms,
            config.min_session_timeout_ms, config.max_session_timeout_ms) == (0, 60_000, 100, 1_800_000)
    assert GroupConfig.from_properties({"group.max.size": "3"}).group_max_size == 3
    with pytest.raises(ValueError, match="unknown group config name"):
        GroupConfig.from_properties({"group.consumer.heartbeat.interval.ms": "3"})
    with pytest.raises(ValueError):
        GroupConfig(min_session_timeout_ms=10, max_session_timeout_ms=5)


def test_state_names_are_kafkas():
    assert [s.value for s in GroupState] == [
        "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"]
