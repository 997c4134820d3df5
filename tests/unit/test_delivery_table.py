"""The Coordinator's table of applied writes (delivery semantics): retries answered from it,
pruned by the client's acknowledgement, kept by snapshots and rebuilt by log replay."""
from dcli.v1 import coord_pb2 as pb
from dcli.v1 import coordlog_pb2 as logpb
from dcli_server.coord import Coordinator, Limits
from tests.unit.coord_harness import Harness


def create(path: str, seq: int, retry: bool = False, acked: int = 0, sequential: bool = True) -> dict:
    return dict(create=pb.CreateRequest(path=path, data=b"x", sequential=sequential),
                seq=seq, retry=retry, acked_seq=acked)


def names(h: Harness, sid: int, path: str = "/") -> list[str]:
    return sorted(h.ok(sid, get_children=pb.GetChildrenRequest(path=path)).get_children.children)


def test_a_retry_of_an_applied_write_gets_the_stored_result():
    h = Harness()
    sid = h.session()
    first = h.ok(sid, **create("/job-", 1))
    again = h.ok(sid, **create("/job-", 1, retry=True))
    assert again.create.path == first.create.path == "/job-0000000000"
    assert again.xid != first.xid                       # answered as the retry it is
    assert names(h, sid) == ["job-0000000000", "zookeeper"]


def test_without_the_retry_flag_the_same_request_applies_again():
    h = Harness()
    sid = h.session()
    h.ok(sid, **create("/job-", 1))
    assert h.ok(sid, **create("/job-", 1)).create.path == "/job-0000000001"


def test_a_retry_of_a_write_never_applied_is_applied():
    h = Harness()
    sid = h.session()
    assert h.ok(sid, **create("/job-", 5, retry=True)).create.path == "/job-0000000000"


def test_acknowledged_results_are_forgotten():
    h = Harness()
    sid = h.session()
    h.ok(sid, **create("/a-", 1))
    h.ok(sid, **create("/b-", 2, acked=1))              # the client has seq 1's answer
    assert h.ok(sid, **create("/a-", 1, retry=True)).create.path == "/a-0000000002"   # applied anew
    assert h.ok(sid, **create("/b-", 2, retry=True)).create.path == "/b-0000000001"   # still kept


def test_results_are_per_session():
    h = Harness()
    s1, s2 = h.session(), h.session()
    h.ok(s1, **create("/job-", 1))
    assert h.ok(s2, **create("/job-", 1, retry=True)).create.path == "/job-0000000001"


def replayed(h: Harness, snapshot: bytes | None, txns) -> Harness:
    again = Harness(clock=h.clock)
    again.coord = Coordinator(limits=Limits(), log=again._log, deliver=again._deliver, now_ms=h.clock)
    again.coord.recover(snapshot, [t.SerializeToString() for t in txns])
    return again


def test_the_table_is_rebuilt_by_log_replay_and_kept_by_snapshots():
    h = Harness()
    sid = h.session()
    h.ok(sid, **create("/job-", 1))
    multi = pb.MultiRequest(ops=[pb.Request(create=pb.CreateRequest(path="/m", data=b"")),
                                 pb.Request(set_data=pb.SetDataRequest(path="/m", data=b"v", version=-1))])
    h.ok(sid, multi=multi, seq=2)
    from_log = replayed(h, None, h.log)
    snap = h.coord.snapshot()
    from_snapshot = replayed(h, snap, [])
    for r in (from_log, from_snapshot):
        assert r.ok(sid, **create("/job-", 1, retry=True)).create.path == "/job-0000000000"
        stored = r.ok(sid, multi=multi, seq=2, retry=True)
        assert [res.WhichOneof("result") for res in stored.multi.results] == ["create", "stat"]
        assert names(r, sid) == ["job-0000000000", "m", "zookeeper"]


def test_closing_the_session_drops_its_results():
    h = Harness()
    sid = h.session()
    h.ok(sid, **create("/job-", 1))
    other = h.session()
    assert [s.session_id for s in logpb.Snapshot.FromString(h.coord.snapshot()).sessions
            if s.applied] == [sid]
    h.ok(sid, close_session=pb.CloseSessionRequest())
    assert [s.session_id for s in logpb.Snapshot.FromString(h.coord.snapshot()).sessions] == [other]


def test_a_retry_gets_the_first_answer_whole_even_after_the_node_changed():
    h = Harness()
    sid = h.session()
    ops = {
        1: dict(create=pb.CreateRequest(path="/n", data=b"v1")),
        2: dict(set_data=pb.SetDataRequest(path="/n", data=b"v2", version=-1)),
        3: dict(create=pb.CreateRequest(path="/gone", data=b"")),
        4: dict(delete=pb.DeleteRequest(path="/gone", version=-1)),
    }
    first = {seq: h.ok(sid, seq=seq, **op) for seq, op in ops.items()}
    h.ok(sid, set_data=pb.SetDataRequest(path="/n", data=b"later", version=-1))    # not tracked
    assert first[2].stat.version == 1
    snap = h.coord.snapshot()
    for r in (h, replayed(h, snap, []), replayed(h, None, h.log)):
        for seq, op in ops.items():
            again = r.ok(sid, seq=seq, retry=True, **op)
            expected = pb.Response()
            expected.CopyFrom(first[seq])
            expected.xid = again.xid
            assert again == expected
