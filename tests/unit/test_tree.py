"""The znode tree through the Coordinator: stats, sequence numbers, errors, multi, snapshots,
containers and TTLs — each rule as ZooKeeper 3.8 behaves (shared/reference/zookeeper.md)."""
from __future__ import annotations

import pytest

from dcli.v1 import coord_pb2 as pb, coordlog_pb2 as logpb
from dcli_server.coord import Coordinator, Limits
from tests.unit.coord_harness import T0, Clock
from tests.unit.coord_harness import Harness as BaseHarness

class Harness(BaseHarness):
    """A Coordinator with an injected clock, a captured log and captured events."""

    def create(self, sid: int, path: str, data: bytes | None = b"", **flags) -> str:
        return self.ok(sid, create=create_req(path, data, **flags)).create.path

    def stat(self, sid: int, path: str) -> pb.Stat:
        r = self.ok(sid, exists=pb.ExistsRequest(path=path))
        assert r.HasField("stat"), f"{path} missing"
        return r.stat

    def children(self, sid: int, path: str) -> list[str]:
        return list(self.ok(sid, get_children=pb.GetChildrenRequest(path=path)).get_children.children)


def create_req(path: str, data: bytes | None = b"", **flags) -> pb.CreateRequest:
    req = pb.CreateRequest(path=path, **flags)
    if data is not None:
        req.data = data
    return req


@pytest.fixture
def h() -> Harness:
    return Harness()


@pytest.fixture
def s(h: Harness) -> int:
    return h.session()


# ---- the fresh tree ----

def test_fresh_tree_has_root_and_zookeeper_nodes(h, s):
    assert h.children(s, "/") == ["zookeeper"]
    assert h.children(s, "/zookeeper") == ["config", "quota"]
    root = h.stat(s, "/")
    assert (root.czxid, root.mzxid, root.pzxid, root.cversion, root.num_children) == (0, 0, 0, 0, 1)
    config = h.ok(s, get_data=pb.GetDataRequest(path="/zookeeper/config")).get_data
    assert config.HasField("data") and config.data == b"" and config.stat.czxid == 0


def test_all_children_number_counts_builtin_nodes(h, s):
    assert h.ok(s, get_all_children_number=pb.GetAllChildrenNumberRequest(path="/")).count == 3
    for i in range(14):
        h.create(s, f"/n{i}")
    assert h.ok(s, get_all_children_number=pb.GetAllChildrenNumberRequest(path="/")).count == 17


def test_all_children_number_counts_descendants_not_self(h, s):
    h.create(s, "/parent")
    h.create(s, "/parent/child")
    h.create(s, "/parent/child/deep")
    h.create(s, "/parent/0", sequential=False)
    r = h.ok(s, get_all_children_number=pb.GetAllChildrenNumberRequest(path="/parent"))
    assert r.count == 3
    e = h.err(s, get_all_children_number=pb.GetAllChildrenNumberRequest(path="/missing"))
    assert e.code == pb.NO_NODE


# ---- stats ----

def test_first_create_on_fresh_server_has_czxid_2_and_full_stat(h, s):
    h.clock.t = T0 + 5
    r = h.ok(s, create=create_req("/parent", b"parent znode"))
    st = r.create.stat
    assert (st.czxid, st.mzxid, st.pzxid) == (2, 2, 2)
    assert (st.ctime, st.mtime) == (T0 + 5, T0 + 5)
    assert (st.version, st.cversion, st.aversion, st.ephemeral_owner) == (0, 0, 0, 0)
    assert (st.data_length, st.num_children) == (12, 0)
    assert r.zxid == 2 and h.coord.last_zxid == 2


def test_parent_stat_on_child_create_and_delete(h, s):
    h.create(s, "/parent", b"p")
    h.clock.t += 1000
    h.create(s, "/parent/child")                     # zxid 3
    p = h.stat(s, "/parent")
    assert (p.cversion, p.pzxid, p.num_children, p.mzxid, p.mtime) == (1, 3, 1, 2, T0)
    h.ok(s, delete=pb.DeleteRequest(path="/parent/child", version=-1))    # zxid 4
    p = h.stat(s, "/parent")
    assert (p.cversion, p.pzxid, p.num_children, p.mzxid, p.version) == (2, 4, 0, 2, 0)


def test_set_data_updates_mzxid_mtime_version_only(h, s):
    h.create(s, "/n", b"one")
    h.clock.t += 7000
    r = h.ok(s, set_data=pb.SetDataRequest(path="/n", data=b"three", version=-1))
    st = r.stat
    assert (st.czxid, st.mzxid, st.ctime, st.mtime) == (2, 3, T0, T0 + 7000)
    assert (st.version, st.cversion, st.data_length, st.pzxid) == (1, 0, 5, 2)
    h.ok(s, set_data=pb.SetDataRequest(path="/n", data=b"x", version=1))
    assert h.stat(s, "/n").version == 2


def test_null_and_empty_data_differ(h, s):
    h.create(s, "/nodata", None)
    h.create(s, "/empty", b"")
    nodata = h.ok(s, get_data=pb.GetDataRequest(path="/nodata")).get_data
    empty = h.ok(s, get_data=pb.GetDataRequest(path="/empty")).get_data
    assert not nodata.HasField("data") and nodata.stat.data_length == 0
    assert empty.HasField("data") and empty.data == b""
    h.ok(s, set_data=pb.SetDataRequest(path="/empty", version=-1))        # set to null
    assert not h.ok(s, get_data=pb.GetDataRequest(path="/empty")).get_data.HasField("data")


def test_data_length_counts_utf8_bytes(h, s):
    h.create(s, "/unicode", "héllo wörld".encode())
    assert h.stat(s, "/unicode").data_length == 13


def test_ephemeral_owner_only_for_ephemerals(h, s):
    h.create(s, "/eph", b"e", ephemeral=True)
    h.create(s, "/cont", b"c", container=True)
    h.create(s, "/ttl", b"t", ttl_ms=3000)
    h.create(s, "/plain", b"p")
    assert h.stat(s, "/eph").ephemeral_owner == s
    assert [h.stat(s, p).ephemeral_owner for p in ("/cont", "/ttl", "/plain")] == [0, 0, 0]
    eph = h.stat(s, "/eph")
    assert eph.pzxid == eph.czxid and eph.cversion == 0


# ---- sequential names ----

def test_sequential_suffix_is_parents_child_creates(h, s):
    h.create(s, "/parent")
    h.create(s, "/eph", ephemeral=True)
    assert h.create(s, "/seq-", sequential=True) == "/seq-0000000002"
    assert h.create(s, "/seq-", sequential=True) == "/seq-0000000003"
    assert h.create(s, "/eseq-", ephemeral=True, sequential=True) == "/eseq-0000000004"
    assert h.create(s, "/seqparent", sequential=True) == "/seqparent0000000005"


def test_sequential_in_fresh_parent_and_trailing_slash(h, s):
    h.create(s, "/sp")
    assert h.create(s, "/sp/job-", b"a", sequential=True) == "/sp/job-0000000000"
    assert h.create(s, "/sp/job-", b"b", sequential=True) == "/sp/job-0000000001"
    assert h.create(s, "/sp/lock-", b"c", ephemeral=True, sequential=True) == "/sp/lock-0000000002"
    assert h.create(s, "/sp/", b"x", sequential=True) == "/sp/0000000003"
    assert h.children(s, "/sp") == ["0000000003", "job-0000000000", "job-0000000001",
                                    "lock-0000000002"]


def test_deletes_do_not_advance_sequence_but_count_in_cversion(h, s):
    h.create(s, "/u")
    h.create(s, "/u/p")
    h.ok(s, delete=pb.DeleteRequest(path="/u/p", version=-1))
    assert h.stat(s, "/u").cversion == 2
    assert h.create(s, "/u/s", sequential=True) == "/u/s0000000001"
    h.create(s, "/u/p2")
    h.ok(s, delete=pb.DeleteRequest(path="/u/p2", version=-1))
    assert h.stat(s, "/u").cversion == 5
    assert h.create(s, "/u/s", sequential=True) == "/u/s0000000003"
    # a restart (snapshot + recover, and also pure log replay) continues the counter
    for snapshot, txns in ((h.coord.snapshot(), []), (None, [t.SerializeToString() for t in h.log])):
        other = Harness(clock=h.clock)
        other.coord.recover(snapshot, txns)
        assert other.create(s, "/u/s", sequential=True) == "/u/s0000000004"


def test_sequential_create_that_exists_fails(h, s):
    h.create(s, "/x0000000001")             # the root's counter is now 1
    e = h.err(s, create=create_req("/x", sequential=True))
    assert (e.code, e.path, e.message) == (pb.NODE_EXISTS, "/x0000000001",
                                           "Node already exists: /x0000000001")


# ---- errors ----

def test_create_errors(h, s):
    h.create(s, "/parent")
    h.create(s, "/eph", ephemeral=True)
    e = h.err(s, create=create_req("/nope/child"))
    assert (e.code, e.path, e.message) == (pb.NO_NODE, "/nope/child", "Node does not exist: /nope/child")
    e = h.err(s, create=create_req("/parent"))
    assert (e.code, e.message) == (pb.NODE_EXISTS, "Node already exists: /parent")
    e = h.err(s, create=create_req("/"))
    assert (e.code, e.message) == (pb.NODE_EXISTS, "Node already exists: /")
    e = h.err(s, create=create_req("/eph/child"))
    assert (e.code, e.message) == (pb.NO_CHILDREN_FOR_EPHEMERALS,
                                   "Ephemerals cannot have children: /eph/child")


def test_failed_writes_log_nothing_and_keep_zxid(h, s):
    h.create(s, "/parent")
    before = (len(h.log), h.coord.last_zxid)
    r = h.call(s, create=create_req("/parent"))
    assert r.HasField("error") and r.zxid == before[1]
    h.err(s, delete=pb.DeleteRequest(path="/missing", version=-1))
    h.err(s, set_data=pb.SetDataRequest(path="/parent", version=9))
    assert (len(h.log), h.coord.last_zxid) == before


@pytest.mark.parametrize("flags,message", [
    (dict(ephemeral=True, ttl_ms=5000), "TTLs cannot be used with Ephemeral znodes"),
    (dict(container=True, ttl_ms=5000), "TTLs cannot be used with Container znodes"),
    (dict(ttl_ms=1099511627776), "ttl must be positive and cannot be larger than: 1099511627775"),
    (dict(ttl_ms=-1), "ttl must be positive and cannot be larger than: 1099511627775"),
    (dict(container=True, sequential=True), "Containers cannot be ephemeral or sequential"),
    (dict(container=True, ephemeral=True), "Containers cannot be ephemeral or sequential"),
])
def test_create_mode_errors(h, s, flags, message):
    e = h.err(s, create=create_req("/ttl", b"x", **flags))
    assert (e.code, e.path, e.message) == (pb.BAD_ARGUMENTS, "/ttl", message)


def test_largest_ttl_is_accepted(h, s):
    h.create(s, "/ttl", ttl_ms=1099511627775)


def test_ttl_disabled_is_unimplemented():
    h = Harness(Limits(ttl_enabled=False))
    s = h.session()
    e = h.err(s, create=create_req("/ttl", b"x", ttl_ms=5000))
    assert (e.code, e.message) == (pb.UNIMPLEMENTED, "KeeperErrorCode = Unimplemented for /ttl")
    h.create(s, "/plain")


def test_data_too_large():
    h = Harness(Limits(max_data_bytes=10))
    s = h.session()
    h.create(s, "/ok", b"0123456789")
    e = h.err(s, create=create_req("/big", b"0123456789A"))
    assert (e.code, e.message) == (pb.DATA_TOO_LARGE, "Data too large for /big: 11 bytes, limit 10")
    e = h.err(s, set_data=pb.SetDataRequest(path="/ok", data=b"x" * 20, version=-1))
    assert (e.code, e.message) == (pb.DATA_TOO_LARGE, "Data too large for /ok: 20 bytes, limit 10")
    assert h.ok(s, get_data=pb.GetDataRequest(path="/ok")).get_data.data == b"0123456789"


def test_default_data_limit_is_one_mib(h, s):
    h.create(s, "/mib", b"x" * (1024 * 1024))
    assert h.err(s, create=create_req("/big", b"x" * (1024 * 1024 + 1))).code == pb.DATA_TOO_LARGE


def test_delete_errors(h, s):
    h.create(s, "/parent")
    h.create(s, "/parent/child")
    e = h.err(s, delete=pb.DeleteRequest(path="/parent", version=-1))
    assert (e.code, e.message) == (pb.NOT_EMPTY, "Node not empty: /parent")
    e = h.err(s, delete=pb.DeleteRequest(path="/parent/child", version=99))
    assert (e.code, e.message) == (pb.BAD_VERSION, "version No is not valid : /parent/child")
    e = h.err(s, delete=pb.DeleteRequest(path="/missing", version=-1))
    assert (e.code, e.message) == (pb.NO_NODE, "Node does not exist: /missing")
    e = h.err(s, delete=pb.DeleteRequest(path="/", version=-1))
    assert (e.code, e.path, e.message) == (pb.BAD_ARGUMENTS, "/", "Arguments are not valid : /")
    h.ok(s, delete=pb.DeleteRequest(path="/parent/child", version=0))
    assert not h.exists(s, "/parent/child")


def test_set_errors(h, s):
    e = h.err(s, set_data=pb.SetDataRequest(path="/missing", data=b"x", version=-1))
    assert (e.code, e.message) == (pb.NO_NODE, "Node does not exist: /missing")
    h.create(s, "/parent")
    e = h.err(s, set_data=pb.SetDataRequest(path="/parent", data=b"x", version=99))
    assert (e.code, e.message) == (pb.BAD_VERSION, "version No is not valid : /parent")


def test_zookeeper_subtree_is_protected(h, s):
    for path in ("/zookeeper", "/zookeeper/config", "/zookeeper/quota", "/zookeeper/other"):
        e = h.err(s, delete=pb.DeleteRequest(path=path, version=-1))
        assert (e.code, e.message) == (pb.BAD_ARGUMENTS, f"Arguments are not valid : {path}")
    e = h.err(s, create=create_req("/zookeeper/mine"))
    assert (e.code, e.message) == (pb.NO_AUTH, "Insufficient permission : /zookeeper/mine")
    assert h.err(s, create=create_req("/zookeeper/", sequential=True)).code == pb.NO_AUTH
    assert h.err(s, create=create_req("/zookeeper")).code == pb.NODE_EXISTS
    for path in ("/zookeeper", "/zookeeper/config"):
        e = h.err(s, set_data=pb.SetDataRequest(path=path, data=b"x", version=-1))
        assert (e.code, e.message) == (pb.NO_AUTH, f"Insufficient permission : {path}")
    # a sibling that merely starts with the name is an ordinary node
    assert h.create(s, "/zookeeper", sequential=True) == "/zookeeper0000000000"
    h.ok(s, set_data=pb.SetDataRequest(path="/zookeeper0000000000", data=b"x", version=-1))
    assert h.children(s, "/zookeeper") == ["config", "quota"]


INVALID = "/parent//x"


@pytest.mark.parametrize("op", [
    dict(create=create_req(INVALID)),
    dict(create=create_req("/trailing/")),
    dict(delete=pb.DeleteRequest(path=INVALID, version=-1)),
    dict(set_data=pb.SetDataRequest(path=INVALID, version=-1)),
    dict(get_data=pb.GetDataRequest(path=INVALID)),
    dict(exists=pb.ExistsRequest(path=INVALID)),
    dict(get_children=pb.GetChildrenRequest(path="noslash")),
    dict(sync=pb.SyncRequest(path=INVALID)),
    dict(get_all_children_number=pb.GetAllChildrenNumberRequest(path=INVALID)),
    dict(add_watch=pb.AddWatchRequest(path=INVALID)),
    dict(remove_watches=pb.RemoveWatchesRequest(path=INVALID)),
    dict(multi=pb.MultiRequest(ops=[pb.Request(check=pb.CheckVersionRequest(path=INVALID, version=-1))])),
])
def test_invalid_paths_are_refused_by_every_op(h, s, op):
    assert h.err(s, **op).code == pb.INVALID_PATH


def test_invalid_path_message(h, s):
    e = h.err(s, create=create_req("/parent//x"))
    assert e.message == 'Invalid path string "/parent//x" caused by empty node name specified @8'
    assert h.err(s, create=create_req("/a/", sequential=False)).message == \
        "Path must not end with / character"


def test_check_alone_is_bad_arguments(h, s):
    h.create(s, "/a")
    e = h.err(s, check=pb.CheckVersionRequest(path="/a", version=-1))
    assert (e.code, e.path) == (pb.BAD_ARGUMENTS, "/a")


def test_request_without_op_is_an_error_not_an_exception(h, s):
    r = h.call(s)
    assert r.error.code == pb.UNIMPLEMENTED and r.xid == h.xid


# ---- reads ----

def test_get_children_sorted_with_stat(h, s):
    h.create(s, "/p")
    for name in ("zeta", "child-0000000001", "alpha", "0000000002"):
        h.create(s, f"/p/{name}")
    r = h.ok(s, get_children=pb.GetChildrenRequest(path="/p")).get_children
    assert list(r.children) == ["0000000002", "alpha", "child-0000000001", "zeta"]
    assert r.stat.num_children == 4 and r.stat.cversion == 4
    assert h.err(s, get_children=pb.GetChildrenRequest(path="/missing")).code == pb.NO_NODE


def test_get_data_returns_data_and_stat(h, s):
    h.create(s, "/p", b"parent znode")
    r = h.ok(s, get_data=pb.GetDataRequest(path="/p")).get_data
    assert r.data == b"parent znode" and r.stat.data_length == 12 and r.stat.czxid == 2
    e = h.err(s, get_data=pb.GetDataRequest(path="/missing"))
    assert (e.code, e.message) == (pb.NO_NODE, "Node does not exist: /missing")


def test_exists_missing_has_no_result_and_no_error(h, s):
    r = h.call(s, exists=pb.ExistsRequest(path="/missing"))
    assert not r.HasField("error") and r.WhichOneof("result") is None


def test_sync_echoes_path(h, s):
    assert h.ok(s, sync=pb.SyncRequest(path="/anything")).sync.path == "/anything"


def test_get_ephemerals_only_own_sorted_and_prefixed(h, s):
    other = h.session()
    h.create(s, "/sp")
    h.create(s, "/eph", ephemeral=True)
    h.create(s, "/sp/lock-", ephemeral=True, sequential=True)
    h.create(s, "/spx", ephemeral=True)
    h.create(other, "/theirs", ephemeral=True)
    all_mine = h.ok(s, get_ephemerals=pb.GetEphemeralsRequest(prefix="")).ephemerals.paths
    assert list(all_mine) == ["/eph", "/sp/lock-0000000000", "/spx"]
    assert list(h.ok(s, get_ephemerals=pb.GetEphemeralsRequest(prefix="/")).ephemerals.paths) == \
        ["/eph", "/sp/lock-0000000000", "/spx"]
    assert list(h.ok(s, get_ephemerals=pb.GetEphemeralsRequest(prefix="/sp/")).ephemerals.paths) == \
        ["/sp/lock-0000000000"]
    r = h.ok(other, get_ephemerals=pb.GetEphemeralsRequest(prefix="/none"))
    assert r.WhichOneof("result") == "ephemerals" and list(r.ephemerals.paths) == []


def test_responses_echo_xid_and_carry_last_zxid(h, s):
    h.create(s, "/a")
    r = h.coord.handle(s, pb.Request(xid=4242, get_data=pb.GetDataRequest(path="/a")))
    assert (r.xid, r.zxid) == (4242, 2)
    r = h.coord.handle(s, pb.Request(xid=-7, get_data=pb.GetDataRequest(path="/missing")))
    assert (r.xid, r.zxid, r.error.code) == (-7, 2, pb.NO_NODE)


def test_reads_never_log(h, s):
    h.create(s, "/a")
    n = len(h.log)
    h.ok(s, get_data=pb.GetDataRequest(path="/a", watch=True))
    h.ok(s, exists=pb.ExistsRequest(path="/b", watch=True))
    h.ok(s, get_children=pb.GetChildrenRequest(path="/", watch=True))
    h.ok(s, sync=pb.SyncRequest(path="/a"))
    h.ok(s, ping=pb.PingRequest())
    h.ok(s, add_watch=pb.AddWatchRequest(path="/a"))
    h.ok(s, get_ephemerals=pb.GetEphemeralsRequest())
    assert len(h.log) == n


# ---- the log ----

def test_txn_is_logged_before_it_is_applied():
    seen = []
    holder: dict[str, Coordinator] = {}

    def log(txn: logpb.Txn) -> None:
        if txn.WhichOneof("op") == "create":
            tree = holder["c"].tree
            seen.append((txn.zxid, txn.create.path, txn.create.path in tree, holder["c"].last_zxid))

    c = Coordinator(limits=Limits(), log=log, deliver=lambda s, e: None, now_ms=lambda: T0)
    holder["c"] = c
    sid, _, _ = c.open_session(10_000)
    c.handle(sid, pb.Request(create=create_req("/a-", sequential=True)))
    assert seen == [(2, "/a-0000000000", False, 1)]
    assert "/a-0000000000" in c.tree


def test_txn_contents(h, s):
    h.clock.t = T0 + 99
    h.create(s, "/e-", b"d", ephemeral=True, sequential=True)
    txn = h.log[-1]
    assert (txn.zxid, txn.time_ms, txn.session_id) == (2, T0 + 99, s)
    assert txn.create == logpb.CreateTxn(path="/e-0000000000", data=b"d", ephemeral_owner=s,
                                         sequential=True)
    h.create(s, "/c", None, container=True)
    assert h.log[-1].create == logpb.CreateTxn(path="/c", container=True)
    assert not h.log[-1].create.HasField("data")


# ---- multi ----

def multi(*ops: pb.Request) -> dict:
    return dict(multi=pb.MultiRequest(ops=list(ops)))


def c_op(path, data=b"", **flags):
    return pb.Request(create=create_req(path, data, **flags))


def d_op(path, version=-1):
    return pb.Request(delete=pb.DeleteRequest(path=path, version=version))


def s_op(path, data=b"", version=-1):
    return pb.Request(set_data=pb.SetDataRequest(path=path, data=data, version=version))


def k_op(path, version=-1):
    return pb.Request(check=pb.CheckVersionRequest(path=path, version=version))


def test_multi_is_one_txn_with_one_zxid(h, s):
    h.create(s, "/old")
    n = len(h.log)
    r = h.ok(s, **multi(c_op("/a", b"1"), c_op("/a/b", b"2"), s_op("/a", b"3"),
                        k_op("/old", 0), d_op("/old")))
    assert len(h.log) == n + 1 and h.log[-1].zxid == 3
    assert [op.WhichOneof("op") for op in h.log[-1].multi.ops] == \
        ["create", "create", "set_data", "check", "delete"]
    results = r.multi.results
    assert [x.WhichOneof("result") for x in results] == ["create", "create", "stat", "empty", "empty"]
    assert results[0].create.path == "/a" and results[0].create.stat.version == 0
    assert results[0].create.stat.num_children == 0          # the stat when that op ran
    assert results[2].stat.version == 1 and results[2].stat.num_children == 1
    assert h.stat(s, "/a").czxid == h.stat(s, "/a/b").czxid == h.stat(s, "/a").mzxid == 3
    assert not h.exists(s, "/old")
    assert h.stat(s, "/").pzxid == 3 and r.zxid == 3


def test_multi_delete_then_create_same_path(h, s):
    h.create(s, "/a", b"old")
    h.ok(s, set_data=pb.SetDataRequest(path="/a", data=b"v1", version=-1))
    h.ok(s, **multi(d_op("/a", 1), c_op("/a", b"new"), k_op("/a", 0)))
    st = h.stat(s, "/a")
    assert st.version == 0 and st.czxid == h.coord.last_zxid


def test_multi_sequential_names_use_pending_counters(h, s):
    h.create(s, "/q")
    r = h.ok(s, **multi(c_op("/q/n-", sequential=True), c_op("/q/n-", sequential=True),
                        c_op("/q/x"), c_op("/q/n-", sequential=True)))
    assert [x.create.path for x in r.multi.results] == \
        ["/q/n-0000000000", "/q/n-0000000001", "/q/x", "/q/n-0000000003"]


def test_multi_failure_rolls_back_and_reports_per_op(h, s):
    h.create(s, "/exists")
    n, zxid = len(h.log), h.coord.last_zxid
    r = h.call(s, **multi(c_op("/new"), s_op("/exists", b"x"), c_op("/exists"), d_op("/new")))
    assert (r.error.code, r.error.path) == (pb.NODE_EXISTS, "/exists")
    codes = [x.error.code for x in r.multi.results]
    assert codes == [pb.OK, pb.OK, pb.NODE_EXISTS, pb.RUNTIME_INCONSISTENCY]
    assert all(x.HasField("error") for x in r.multi.results)
    assert r.multi.results[3].error.path == "/new"
    assert (len(h.log), h.coord.last_zxid, r.zxid) == (n, zxid, zxid)
    assert not h.exists(s, "/new") and h.stat(s, "/exists").version == 0


def test_multi_check_failures(h, s):
    h.create(s, "/a")
    r = h.call(s, **multi(k_op("/a", 3), c_op("/b")))
    assert [x.error.code for x in r.multi.results] == [pb.BAD_VERSION, pb.RUNTIME_INCONSISTENCY]
    r = h.call(s, **multi(c_op("/b"), k_op("/missing")))
    assert r.error.code == pb.NO_NODE and not h.exists(s, "/b")


def test_multi_sees_its_own_earlier_ops(h, s):
    # the second create fails because the first one made /a a parent with an ephemeral owner
    r = h.call(s, **multi(c_op("/a", ephemeral=True), c_op("/a/b")))
    assert r.error.code == pb.NO_CHILDREN_FOR_EPHEMERALS
    # deleting a parent whose child an earlier op created: not empty
    h.create(s, "/p")
    r = h.call(s, **multi(c_op("/p/c"), d_op("/p")))
    assert r.error.code == pb.NOT_EMPTY
    # version seen by a check after a set in the same multi
    h.ok(s, **multi(s_op("/p", b"x"), k_op("/p", 1)))


def test_multi_refuses_read_ops(h, s):
    h.create(s, "/a")
    r = h.call(s, **multi(c_op("/b"), pb.Request(get_data=pb.GetDataRequest(path="/a"))))
    assert [x.error.code for x in r.multi.results] == [pb.OK, pb.BAD_ARGUMENTS]
    assert not h.exists(s, "/b")


def test_empty_multi(h, s):
    n = len(h.log)
    r = h.ok(s, **multi())
    assert r.WhichOneof("result") == "multi" and len(r.multi.results) == 0 and len(h.log) == n


# ---- snapshots and recovery ----

def build_varied_tree(h: Harness) -> int:
    s = h.session()
    h.create(s, "/parent", b"parent znode")
    h.create(s, "/parent/child", None)
    h.create(s, "/parent/tmp")
    h.ok(s, delete=pb.DeleteRequest(path="/parent/tmp", version=-1))
    h.create(s, "/parent/s-", sequential=True)
    h.create(s, "/eph", b"e", ephemeral=True)
    h.create(s, "/cont", container=True)
    h.create(s, "/ttl", b"t", ttl_ms=5000)
    h.clock.t += 1234
    h.ok(s, set_data=pb.SetDataRequest(path="/parent", data=b"more", version=0))
    h.session(10_000)
    return s


def test_snapshot_recover_reproduces_state(h):
    s = build_varied_tree(h)
    snap = h.coord.snapshot()
    other = Harness(clock=Clock(T0 + 10**6))
    other.coord.recover(snap, [])
    assert other.coord.snapshot() == snap
    assert other.coord.last_zxid == h.coord.last_zxid
    assert other.log == []
    assert other.stat(s, "/parent") == h.stat(s, "/parent")
    # child, tmp and s-0000000002 were created under /parent (tmp's delete does not count)
    assert other.create(s, "/parent/s-", sequential=True) == "/parent/s-0000000003"


def test_snapshot_content(h):
    s = build_varied_tree(h)
    snap = logpb.Snapshot.FromString(h.coord.snapshot())
    assert snap.zxid == h.coord.last_zxid
    paths = [n.path for n in snap.nodes]
    for node in snap.nodes[1:]:
        parent = node.path.rsplit("/", 1)[0] or "/"
        assert paths.index(parent) < paths.index(node.path)
    by_path = {n.path: n for n in snap.nodes}
    assert by_path["/parent"].child_creates == 3 and by_path["/parent"].cversion == 4
    assert by_path["/cont"].container and by_path["/ttl"].ttl_ms == 5000
    assert by_path["/eph"].ephemeral_owner == s
    assert not by_path["/parent/child"].HasField("data")
    assert len(snap.sessions) == 2 and all(len(x.password) == 16 for x in snap.sessions)
    assert {x.timeout_ms for x in snap.sessions} == {30_000, 10_000}


def test_log_replay_gives_identical_snapshot(h):
    build_varied_tree(h)
    raw = [t.SerializeToString() for t in h.log]
    fresh = Harness(clock=Clock(T0 + 5))
    fresh.coord.recover(None, raw)
    assert fresh.coord.snapshot() == h.coord.snapshot()
    # snapshot taken midway, then the rest of the log (the prefix is skipped by zxid)
    mid = Harness(clock=h.clock)
    mid.coord.recover(None, raw[:5])
    combined = Harness(clock=h.clock)
    combined.coord.recover(mid.coord.snapshot(), raw)
    assert combined.coord.snapshot() == h.coord.snapshot()


def test_recover_replaces_previous_state(h, s):
    h.create(s, "/stale")
    h.coord.recover(None, [])
    assert h.coord.last_zxid == 0
    assert h.err(s, exists=pb.ExistsRequest(path="/stale")).code == pb.SESSION_EXPIRED


# ---- containers and TTLs ----

def test_container_deleted_only_after_it_had_children(h, s):
    h.create(s, "/cont", container=True)
    h.create(s, "/cont2", container=True)
    h.create(s, "/cont2/c")
    assert h.coord.sweep() == []
    h.ok(s, delete=pb.DeleteRequest(path="/cont2/c", version=-1))
    n = len(h.log)
    assert h.coord.sweep() == ["/cont2"]
    assert not h.exists(s, "/cont2") and h.exists(s, "/cont")
    txn = h.log[n]
    assert txn.session_id == 0 and txn.delete.path == "/cont2" and len(h.log) == n + 1


def test_nested_containers_go_one_sweep_at_a_time(h, s):
    h.create(s, "/a", container=True)
    h.create(s, "/a/b", container=True)
    h.create(s, "/a/b/c")
    h.ok(s, delete=pb.DeleteRequest(path="/a/b/c", version=-1))
    assert h.coord.sweep() == ["/a/b"]
    assert h.coord.sweep() == ["/a"]


def test_ttl_node_expires_after_mtime_plus_ttl(h, s):
    h.create(s, "/ttl", ttl_ms=3000)
    h.create(s, "/ttlp", ttl_ms=3000)
    h.create(s, "/ttlp/child")
    h.clock.t += 2000
    h.ok(s, set_data=pb.SetDataRequest(path="/ttl", data=b"x", version=-1))   # mtime moves
    h.clock.t += 2999
    assert h.coord.sweep() == []
    h.clock.t += 1
    assert h.coord.sweep() == ["/ttl"]
    assert not h.exists(s, "/ttl") and h.exists(s, "/ttlp")      # has a child: kept
    h.ok(s, delete=pb.DeleteRequest(path="/ttlp/child", version=-1))
    assert h.coord.sweep() == ["/ttlp"]


def test_sweep_fires_watches(h, s):
    h.create(s, "/cont", container=True)
    h.create(s, "/cont/c")
    h.ok(s, delete=pb.DeleteRequest(path="/cont/c", version=-1))
    h.ok(s, exists=pb.ExistsRequest(path="/cont", watch=True))
    h.coord.sweep()
    assert h.events == [(s, pb.NODE_DELETED, "/cont", h.coord.last_zxid)]


def test_container_and_ttl_index_survives_recover(h, s):
    h.create(s, "/cont", container=True)
    h.create(s, "/cont/c")
    h.ok(s, delete=pb.DeleteRequest(path="/cont/c", version=-1))
    h.create(s, "/ttl", ttl_ms=1000)
    h.clock.t += 1000
    other = Harness(clock=h.clock)
    other.coord.recover(h.coord.snapshot(), [])
    assert other.coord.sweep() == ["/cont", "/ttl"]
