"""Sessions through the Coordinator: timeout negotiation, ids and passwords, expiry on an
injected clock, close, resume, detach, and fresh deadlines after recovery."""
from __future__ import annotations

import pytest

from dcli.v1 import coord_pb2 as pb, coordlog_pb2 as logpb
from dcli.wire.errors import SessionExpiredError
from dcli_server.coord import Limits
from dcli_server.coord.sessions import SessionTable, initial_session_id
from tests.unit.coord_harness import T0, Clock
from tests.unit.coord_harness import Harness as BaseHarness

class Harness(BaseHarness):
    def create(self, sid: int, path: str, **flags) -> pb.Response:
        return self.ok(sid, create=pb.CreateRequest(path=path, data=b"x", **flags))

    def raw_log(self) -> list[bytes]:
        return [t.SerializeToString() for t in self.log]


@pytest.fixture
def h() -> Harness:
    return Harness()


# ---- opening ----

@pytest.mark.parametrize("requested,granted", [(0, 4000), (1000, 4000), (4000, 4000),
                                               (10_000, 10_000), (40_000, 40_000),
                                               (100_000, 40_000)])
def test_timeout_negotiation(h, requested, granted):
    assert h.coord.open_session(requested)[2] == granted


def test_negotiation_uses_configured_limits():
    h = Harness(Limits(min_session_timeout_ms=100, max_session_timeout_ms=500))
    assert [h.coord.open_session(t)[2] for t in (10, 300, 900)] == [100, 300, 500]


def test_session_ids_follow_zookeepers_formula(h):
    first = h.coord.open_session(10_000)[0]
    second = h.coord.open_session(10_000)[0]
    assert first == ((T0 << 24) & (2**64 - 1)) >> 8 | (1 << 56)
    assert second == first + 1
    assert first >> 56 == 1 and 0 < first < 2**63
    assert initial_session_id(0x6b8d1, 1) == 0x1000006b8d10000      # the reference's shape
    assert Harness(node_id=3).coord.open_session(10_000)[0] >> 56 == 3


def test_session_ids_differ_across_restarts(h):
    old = h.coord.open_session(10_000)[0]
    later = Harness(clock=Clock(T0 + 1))
    later.coord.recover(None, h.raw_log())
    new = later.coord.open_session(10_000)[0]
    assert new != old and new > old


def test_restored_session_ids_are_never_reused(h):
    ids = [h.coord.open_session(10_000)[0] for _ in range(3)]
    same_clock = Harness(clock=Clock(T0))            # a restart that sees the same clock value
    same_clock.coord.recover(h.coord.snapshot(), [])
    assert same_clock.coord.open_session(10_000)[0] not in ids


def test_open_session_is_logged_and_consumes_a_zxid(h):
    sid, password, timeout = h.coord.open_session(12_345)
    assert len(password) == 16 and h.coord.last_zxid == 1
    txn = h.log[0]
    assert (txn.zxid, txn.session_id, txn.time_ms) == (1, sid, T0)
    assert txn.create_session == logpb.CreateSessionTxn(session_id=sid, timeout_ms=12_345,
                                                        password=password)
    assert h.create(sid, "/a").create.stat.czxid == 2


def test_passwords_differ(h):
    assert h.coord.open_session(10_000)[1] != h.coord.open_session(10_000)[1]


# ---- expiry ----

def test_expiry_deletes_ephemerals_and_fires_watches():
    h = Harness()
    owner = h.coord.open_session(10_000)[0]
    watcher = h.coord.open_session(40_000)[0]
    h.create(owner, "/dir")
    h.create(owner, "/dir/b", ephemeral=True)
    h.create(owner, "/dir/a-", ephemeral=True, sequential=True)
    h.ok(watcher, exists=pb.ExistsRequest(path="/dir/b", watch=True))
    h.ok(watcher, get_children=pb.GetChildrenRequest(path="/dir", watch=True))
    h.clock.t += 9_999
    assert h.coord.expire_sessions() == []
    h.clock.t += 1
    n = len(h.log)
    assert h.coord.expire_sessions() == [owner]
    assert len(h.log) == n + 1
    txn = h.log[-1]
    assert txn.close_session.session_id == owner and txn.session_id == owner
    assert not h.exists(watcher, "/dir/b") and not h.exists(watcher, "/dir/a-0000000001")
    assert h.exists(watcher, "/dir")
    d = h.ok(watcher, exists=pb.ExistsRequest(path="/dir")).stat
    assert (d.pzxid, d.cversion, d.num_children) == (txn.zxid, 4, 0)
    assert h.events == [(watcher, pb.NODE_CHILDREN_CHANGED, "/dir", txn.zxid),
                        (watcher, pb.NODE_DELETED, "/dir/b", txn.zxid)]
    assert h.call(owner, ping=pb.PingRequest()).error.code == pb.SESSION_EXPIRED
    assert h.coord.expire_sessions() == []


def test_requests_and_touch_extend_the_deadline(h):
    a = h.coord.open_session(10_000)[0]
    b = h.coord.open_session(10_000)[0]
    c = h.coord.open_session(10_000)[0]
    h.clock.t += 6_000
    h.coord.touch(a)
    h.ok(b, ping=pb.PingRequest())
    h.clock.t += 6_000
    assert h.coord.expire_sessions() == [c]
    h.clock.t += 3_999
    assert h.coord.expire_sessions() == []
    h.clock.t += 1
    assert sorted(h.coord.expire_sessions()) == sorted([a, b])


def test_expired_but_not_yet_closed_session_is_refused(h):
    sid = h.coord.open_session(10_000)[0]
    h.create(sid, "/e", ephemeral=True)
    h.clock.t += 10_000
    h.coord.touch(sid)                               # too late: no revival
    r = h.call(sid, get_data=pb.GetDataRequest(path="/e"))
    assert (r.error.code, r.error.message) == (pb.SESSION_EXPIRED,
                                               "KeeperErrorCode = Session expired")
    assert h.coord.expire_sessions() == [sid]


def test_unknown_session_is_expired(h):
    r = h.coord.handle(42, pb.Request(xid=9, ping=pb.PingRequest()))
    assert (r.xid, r.error.code) == (9, pb.SESSION_EXPIRED)
    h.coord.touch(42)                                # harmless
    h.coord.detach(42)


# ---- close ----

def test_close_session_request(h):
    sid = h.coord.open_session(10_000)[0]
    other = h.coord.open_session(10_000)[0]
    h.create(sid, "/e1", ephemeral=True)
    h.create(sid, "/e2", ephemeral=True)
    h.create(sid, "/kept")
    h.ok(other, exists=pb.ExistsRequest(path="/e2", watch=True))
    r = h.ok(sid, close_session=pb.CloseSessionRequest())
    assert r.WhichOneof("result") == "empty" and r.zxid == h.coord.last_zxid
    assert h.log[-1].close_session.session_id == sid
    assert [h.exists(other, p) for p in ("/e1", "/e2", "/kept")] == [False, False, True]
    assert h.events == [(other, pb.NODE_DELETED, "/e2", r.zxid)]
    for op in (dict(ping=pb.PingRequest()), dict(create=pb.CreateRequest(path="/x")),
               dict(close_session=pb.CloseSessionRequest())):
        assert h.call(sid, **op).error.code == pb.SESSION_EXPIRED
    with pytest.raises(SessionExpiredError):
        h.coord.resume_session(sid, b"", 10_000)
    assert h.coord.expire_sessions() == []


# ---- resume and detach ----

def test_resume_keeps_session_and_ephemerals(h):
    sid, password, _ = h.coord.open_session(10_000)
    h.create(sid, "/e", ephemeral=True)
    h.coord.detach(sid)
    h.clock.t += 9_000
    assert h.coord.resume_session(sid, password, 20_000) == 20_000
    h.clock.t += 19_999
    assert h.coord.expire_sessions() == []           # the resume reset the deadline ...
    assert h.ok(sid, exists=pb.ExistsRequest(path="/e")).stat.ephemeral_owner == sid
    h.clock.t += 20_000
    assert h.coord.expire_sessions() == [sid]        # ... with the newly negotiated timeout


def test_resume_renegotiates_within_limits(h):
    sid, password, _ = h.coord.open_session(10_000)
    assert h.coord.resume_session(sid, password, 1) == 4000
    assert h.coord.resume_session(sid, password, 10**9) == 40_000


@pytest.mark.parametrize("case", ["wrong password", "unknown", "expired", "empty password"])
def test_resume_refused(h, case):
    sid, password, _ = h.coord.open_session(10_000)
    args = {"wrong password": (sid, b"x" * 16), "unknown": (sid + 1000, password),
            "expired": (sid, password), "empty password": (sid, b"")}[case]
    if case == "expired":
        h.clock.t += 10_000
    with pytest.raises(SessionExpiredError):
        h.coord.resume_session(*args, 10_000)


def test_detached_session_lives_until_its_deadline(h):
    sid = h.coord.open_session(10_000)[0]
    h.create(sid, "/e", ephemeral=True)
    h.coord.detach(sid)
    h.clock.t += 9_999
    assert h.coord.expire_sessions() == [] and h.exists(sid, "/e")
    h.clock.t += 10_000
    assert h.coord.expire_sessions() == [sid]


# ---- recovery ----

@pytest.mark.parametrize("source", ["snapshot", "log"])
def test_recover_gives_every_session_a_fresh_deadline(h, source):
    short, short_pw, _ = h.coord.open_session(5_000)
    long = h.coord.open_session(30_000)[0]
    h.create(short, "/e", ephemeral=True)
    h.clock.t += 4_000
    restarted = Harness(clock=Clock(T0 + 3_600_000))         # an hour later
    if source == "snapshot":
        restarted.coord.recover(h.coord.snapshot(), [])
    else:
        restarted.coord.recover(None, h.raw_log())
    assert restarted.coord.expire_sessions() == []
    assert restarted.coord.resume_session(short, short_pw, 5_000) == 5_000
    restarted.clock.t += 5_000
    assert restarted.coord.expire_sessions() == [short]
    assert "/e" not in restarted.coord.tree       # (a request by `long` would touch it)
    restarted.clock.t += 25_000
    assert restarted.coord.expire_sessions() == [long]
    assert restarted.log[0].close_session.session_id == short    # recovery itself logged nothing


def test_recovered_sessions_keep_password_and_timeout(h):
    sid, password, _ = h.coord.open_session(7_000)
    restarted = Harness()
    restarted.coord.recover(h.coord.snapshot(), [])
    with pytest.raises(SessionExpiredError):
        restarted.coord.resume_session(sid, b"wrong", 7_000)
    restarted.coord.resume_session(sid, password, 7_000)
    snap = logpb.Snapshot.FromString(restarted.coord.snapshot())
    assert [(x.session_id, x.timeout_ms, x.password) for x in snap.sessions] == \
        [(sid, 7_000, password)]


# ---- the table itself ----

def test_table_due_skips_stale_heap_entries():
    table = SessionTable()
    table.add(1, 100, b"", now_ms=0)
    table.add(2, 100, b"", now_ms=0)
    for t in range(0, 1000, 10):
        table.touch(1, t)                           # many stale entries for session 1
    assert table.due(100) == [2]
    table.remove(2)
    assert table.due(1088) == []
    assert table.due(1090) == [1]
    assert table.due(1090) == []
