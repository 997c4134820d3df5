"""Watches through the Coordinator: the trigger table for each op against each watch kind,
one-time vs persistent vs recursive, per-txn dedup, SetWatches catch-up, remove_watches."""
from __future__ import annotations

import pytest

from dcli.v1 import coord_pb2 as pb
from tests.unit.coord_harness import Harness as BaseHarness

CREATED, DELETED, CHANGED, CHILDREN = (pb.NODE_CREATED, pb.NODE_DELETED, pb.NODE_DATA_CHANGED,
                                       pb.NODE_CHILDREN_CHANGED)


class Harness(BaseHarness):
    def take(self, session_id: int | None = None) -> list[tuple]:
        """Events so far (of one session, without it and the zxid), then forget them."""
        events, self.events = self.events, []
        if session_id is None:
            return events
        return [(t, p) for sid, t, p, _ in events if sid == session_id]

    # writes
    def create(self, sid, path, **flags):
        return self.ok(sid, create=pb.CreateRequest(path=path, data=b"", **flags))

    def set(self, sid, path, data=b"x"):
        return self.ok(sid, set_data=pb.SetDataRequest(path=path, data=data, version=-1))

    def delete(self, sid, path):
        return self.ok(sid, delete=pb.DeleteRequest(path=path, version=-1))

    # watch registrations
    def get_w(self, sid, path):
        return self.ok(sid, get_data=pb.GetDataRequest(path=path, watch=True))

    def exists_w(self, sid, path):
        return self.ok(sid, exists=pb.ExistsRequest(path=path, watch=True))

    def ls_w(self, sid, path):
        return self.ok(sid, get_children=pb.GetChildrenRequest(path=path, watch=True))

    def add_watch(self, sid, path, mode=pb.PERSISTENT):
        return self.ok(sid, add_watch=pb.AddWatchRequest(path=path, mode=mode))

    def remove(self, sid, path, kind) -> list[int]:
        r = self.coord.handle(sid, pb.Request(
            remove_watches=pb.RemoveWatchesRequest(path=path, type=kind)))
        if r.HasField("error"):
            assert r.error.code == pb.NO_WATCHER and r.error.path == path
            return []
        return list(r.remove_watches.removed)


@pytest.fixture
def h() -> Harness:
    return Harness()


# ---- the trigger table ----
# Tree before each case: /p (data "d") with child /p/c, and /p/c/g below it; /new does not exist.
# Each watch is set by `watcher` (another session than `writer`), then `action` runs.

WATCHES = {
    "data": lambda h, s, path: h.get_w(s, path),
    "exist": lambda h, s, path: h.exists_w(s, path),
    "child": lambda h, s, path: h.ls_w(s, path),
    "persistent": lambda h, s, path: h.add_watch(s, path, pb.PERSISTENT),
    "recursive": lambda h, s, path: h.add_watch(s, path, pb.PERSISTENT_RECURSIVE),
}

ACTIONS = {
    "set p": lambda h, s: h.set(s, "/p"),
    "delete c/g": lambda h, s: h.delete(s, "/p/c/g"),
    "create c/n": lambda h, s: h.create(s, "/p/c/n"),
    "set c": lambda h, s: h.set(s, "/p/c"),
    "create p/n": lambda h, s: h.create(s, "/p/n"),
    "create new": lambda h, s: h.create(s, "/new"),
}

# (watch kind, watched path, action) -> events the watcher gets
TABLE = [
    ("data", "/p", "set p", [(CHANGED, "/p")]),
    ("data", "/p", "create p/n", []),
    ("data", "/p/c/g", "delete c/g", [(DELETED, "/p/c/g")]),
    ("data", "/p/c", "create c/n", []),
    ("exist", "/new", "create new", [(CREATED, "/new")]),
    ("exist", "/p", "set p", [(CHANGED, "/p")]),
    ("exist", "/p/c/g", "delete c/g", [(DELETED, "/p/c/g")]),
    ("exist", "/p", "create p/n", []),
    ("child", "/p", "create p/n", [(CHILDREN, "/p")]),
    ("child", "/p/c", "delete c/g", [(CHILDREN, "/p/c")]),
    ("child", "/p/c/g", "delete c/g", [(DELETED, "/p/c/g")]),
    ("child", "/p", "set p", []),
    ("child", "/p", "set c", []),
    ("child", "/p", "create c/n", []),                     # grandchildren are not children
    ("persistent", "/p", "set p", [(CHANGED, "/p")]),
    ("persistent", "/p", "create p/n", [(CHILDREN, "/p")]),
    ("persistent", "/p/c", "delete c/g", [(CHILDREN, "/p/c")]),
    ("persistent", "/p/c/g", "delete c/g", [(DELETED, "/p/c/g")]),
    ("persistent", "/new", "create new", [(CREATED, "/new")]),
    ("persistent", "/p", "set c", []),
    ("persistent", "/p", "create c/n", []),
    ("recursive", "/p", "set p", [(CHANGED, "/p")]),
    ("recursive", "/p", "set c", [(CHANGED, "/p/c")]),
    ("recursive", "/p", "create p/n", [(CREATED, "/p/n")]),  # never NodeChildrenChanged
    ("recursive", "/p", "create c/n", [(CREATED, "/p/c/n")]),
    ("recursive", "/p", "delete c/g", [(DELETED, "/p/c/g")]),
    ("recursive", "/p/c/g", "delete c/g", [(DELETED, "/p/c/g")]),
    ("recursive", "/", "create new", [(CREATED, "/new")]),
    ("recursive", "/p/c", "set p", []),
    ("recursive", "/new", "create p/n", []),
]


@pytest.mark.parametrize("kind,path,action,expected", TABLE,
                         ids=[f"{k}:{p}:{a}" for k, p, a, _ in TABLE])
def test_trigger_table(h, kind, path, action, expected):
    writer, watcher = h.session(), h.session()
    h.create(writer, "/p")
    h.create(writer, "/p/c")
    h.create(writer, "/p/c/g")
    WATCHES[kind](h, watcher, path)
    ACTIONS[action](h, writer)
    events = h.take()
    assert [(t, p) for sid, t, p, _ in events] == expected
    assert all(sid == watcher and zxid == h.coord.last_zxid for sid, _, _, zxid in events)


@pytest.mark.parametrize("kind", ["data", "exist", "child"])
def test_one_time_watches_fire_once(h, kind):
    s = h.session()
    h.create(s, "/p")
    WATCHES[kind](h, s, "/p")
    if kind == "child":
        h.create(s, "/p/a")
        h.create(s, "/p/b")
    else:
        h.set(s, "/p")
        h.set(s, "/p")
    assert len(h.take(s)) == 1


@pytest.mark.parametrize("mode", [pb.PERSISTENT, pb.PERSISTENT_RECURSIVE])
def test_persistent_watches_stay(h, mode):
    s = h.session()
    h.add_watch(s, "/p", mode)
    h.create(s, "/p")
    h.set(s, "/p")
    h.set(s, "/p")
    h.delete(s, "/p")
    h.create(s, "/p")
    assert h.take(s) == [(CREATED, "/p"), (CHANGED, "/p"), (CHANGED, "/p"),
                         (DELETED, "/p"), (CREATED, "/p")]


def test_writer_hears_its_own_changes_and_events_precede_the_response(h):
    s = h.session()
    h.create(s, "/p")
    h.get_w(s, "/p")
    r = h.set(s, "/p")
    assert h.take() == [(s, CHANGED, "/p", r.zxid)]


def test_every_watching_session_gets_its_event(h):
    a, b, c = h.session(), h.session(), h.session()
    h.create(a, "/p")
    h.get_w(a, "/p")
    h.exists_w(b, "/p")
    h.set(c, "/p")
    assert sorted(sid for sid, *_ in h.take()) == sorted([a, b])


def test_one_event_per_session_path_and_type(h):
    s = h.session()
    h.create(s, "/p")
    h.get_w(s, "/p")
    h.exists_w(s, "/p")
    h.add_watch(s, "/p", pb.PERSISTENT)
    h.add_watch(s, "/p", pb.PERSISTENT_RECURSIVE)
    h.add_watch(s, "/", pb.PERSISTENT_RECURSIVE)
    h.set(s, "/p")
    assert h.take(s) == [(CHANGED, "/p")]


def test_dedup_spans_the_whole_multi_and_keeps_op_order(h):
    s = h.session()
    h.create(s, "/p")
    h.add_watch(s, "/p", pb.PERSISTENT)
    h.add_watch(s, "/q", pb.PERSISTENT)
    h.ls_w(s, "/")
    ops = [pb.Request(set_data=pb.SetDataRequest(path="/p", data=b"1", version=-1)),
           pb.Request(create=pb.CreateRequest(path="/q")),
           pb.Request(set_data=pb.SetDataRequest(path="/p", data=b"2", version=-1)),
           pb.Request(delete=pb.DeleteRequest(path="/q", version=-1)),
           pb.Request(create=pb.CreateRequest(path="/p/c"))]
    r = h.ok(s, multi=pb.MultiRequest(ops=ops))
    events = h.take()
    assert [(t, p) for _, t, p, _ in events] == [
        (CHANGED, "/p"), (CREATED, "/q"), (CHILDREN, "/"), (DELETED, "/q"), (CHILDREN, "/p")]
    assert {zxid for *_, zxid in events} == {r.zxid}


def test_get_on_missing_node_registers_no_watch(h):
    s = h.session()
    assert h.err(s, get_data=pb.GetDataRequest(path="/m", watch=True)).code == pb.NO_NODE
    assert h.err(s, get_children=pb.GetChildrenRequest(path="/m", watch=True)).code == pb.NO_NODE
    h.create(s, "/m")
    h.create(s, "/m/c")
    assert h.take() == []


def test_exists_watch_on_missing_waits_for_creation(h):
    s = h.session()
    r = h.exists_w(s, "/missing")
    assert r.WhichOneof("result") is None
    h.create(s, "/other")
    h.create(s, "/missing")
    assert h.take(s) == [(CREATED, "/missing")]


def test_reads_without_watch_flag_register_nothing(h):
    s = h.session()
    h.create(s, "/p")
    h.ok(s, get_data=pb.GetDataRequest(path="/p"))
    h.ok(s, exists=pb.ExistsRequest(path="/p"))
    h.ok(s, get_children=pb.GetChildrenRequest(path="/p"))
    h.create(s, "/p/c")
    h.set(s, "/p")
    assert h.take() == []


def test_delete_fires_data_and_child_watches_of_node_and_parent(h):
    s = h.session()
    h.create(s, "/p")
    h.create(s, "/p/c")
    h.get_w(s, "/p/c")
    h.ls_w(s, "/p/c")
    h.ls_w(s, "/p")
    h.delete(s, "/p/c")
    assert h.take(s) == [(DELETED, "/p/c"), (CHILDREN, "/p")]


def test_close_and_expiry_fire_for_other_sessions_only(h):
    owner, other = h.session(), h.session()
    h.create(owner, "/dir")
    h.create(owner, "/dir/e1", ephemeral=True)
    h.create(owner, "/dir/e2", ephemeral=True)
    h.exists_w(other, "/dir/e1")
    h.add_watch(other, "/dir", pb.PERSISTENT)
    h.get_w(owner, "/dir/e2")                    # the closing session's own watch: dropped
    r = h.ok(owner, close_session=pb.CloseSessionRequest())
    assert h.take() == [(other, DELETED, "/dir/e1", r.zxid), (other, CHILDREN, "/dir", r.zxid)]


def test_detach_drops_watches_but_not_session(h):
    s, w = h.session(), h.session()
    h.create(s, "/p")
    h.get_w(w, "/p")
    h.add_watch(w, "/p", pb.PERSISTENT_RECURSIVE)
    h.coord.detach(w)
    h.set(s, "/p")
    assert h.take() == []
    h.ok(w, ping=pb.PingRequest())


# ---- SetWatches on reconnect ----

def test_set_watches_catches_up_and_reregisters(h):
    s, w = h.session(), h.session()
    for path in ("/kept", "/changed", "/gone", "/dir", "/dir2", "/later"):
        h.create(s, path)
    h.create(s, "/dir2/c")
    seen = h.coord.last_zxid
    h.set(s, "/changed")
    h.delete(s, "/gone")
    h.create(s, "/born")
    h.create(s, "/dir/c")
    h.take()
    h.coord.set_watches(w, seen, data=["/kept", "/changed", "/gone"],
                        exist=["/born", "/unborn"], child=["/dir", "/dir2", "/gone"],
                        persistent=["/p"], persistent_recursive=["/r"])
    now = h.coord.last_zxid
    assert h.take() == [(w, CHANGED, "/changed", now), (w, DELETED, "/gone", now),
                        (w, CREATED, "/born", now), (w, CHILDREN, "/dir", now),
                        (w, DELETED, "/gone", now)]
    # what did not fire is registered again: exactly one event each from here on
    h.set(s, "/kept")
    h.create(s, "/unborn")
    h.create(s, "/dir2/d")
    h.create(s, "/p")
    h.create(s, "/r")
    h.create(s, "/r/x")
    h.set(s, "/changed")
    h.create(s, "/dir/d")
    assert h.take(w) == [(CHANGED, "/kept"), (CREATED, "/unborn"), (CHILDREN, "/dir2"),
                         (CREATED, "/p"), (CREATED, "/r"), (CREATED, "/r/x")]


def test_set_watches_on_dead_session_fails(h):
    with pytest.raises(Exception) as info:
        h.coord.set_watches(12345, 0, ["/a"], [], [], [], [])
    assert getattr(info.value, "code", None) == pb.SESSION_EXPIRED


# ---- remove_watches ----

def register_all(h: Harness, s: int, path: str = "/p") -> None:
    h.get_w(s, path)
    h.ls_w(s, path)
    h.add_watch(s, path, pb.PERSISTENT)
    h.add_watch(s, path, pb.PERSISTENT_RECURSIVE)


@pytest.mark.parametrize("kind,removed,left", [
    (pb.WATCHER_DATA, [pb.WATCHER_DATA], {"child", "persistent", "recursive"}),
    (pb.WATCHER_CHILDREN, [pb.WATCHER_CHILDREN], {"data", "persistent", "recursive"}),
    (pb.WATCHER_PERSISTENT, [pb.WATCHER_PERSISTENT], {"data", "child", "recursive"}),
    (pb.WATCHER_PERSISTENT_RECURSIVE, [pb.WATCHER_PERSISTENT_RECURSIVE],
     {"data", "child", "persistent"}),
    (pb.WATCHER_ANY, [pb.WATCHER_DATA, pb.WATCHER_CHILDREN, pb.WATCHER_PERSISTENT,
                      pb.WATCHER_PERSISTENT_RECURSIVE], set()),
])
def test_remove_watches_by_type(h, kind, removed, left):
    s = h.session()
    h.create(s, "/p")
    register_all(h, s)
    assert h.remove(s, "/p", kind) == removed
    assert h.remove(s, "/p", kind) == []                     # NoWatcher the second time
    remaining = set()
    for name, probe in (("data", pb.WATCHER_DATA), ("child", pb.WATCHER_CHILDREN),
                        ("persistent", pb.WATCHER_PERSISTENT),
                        ("recursive", pb.WATCHER_PERSISTENT_RECURSIVE)):
        if h.remove(s, "/p", probe):
            remaining.add(name)
    assert remaining == left


def test_remove_data_covers_exist_watches(h):
    s = h.session()
    h.exists_w(s, "/missing")
    assert h.remove(s, "/missing", pb.WATCHER_DATA) == [pb.WATCHER_DATA]
    h.create(s, "/missing")
    assert h.take() == []


def test_removed_watches_no_longer_fire(h):
    s = h.session()
    h.create(s, "/p")
    register_all(h, s)
    h.remove(s, "/p", pb.WATCHER_ANY)
    h.set(s, "/p")
    h.create(s, "/p/c")
    assert h.take() == []


def test_remove_watches_error_and_isolation(h):
    a, b = h.session(), h.session()
    h.create(a, "/p")
    h.get_w(b, "/p")
    e = h.err(a, remove_watches=pb.RemoveWatchesRequest(path="/p", type=pb.WATCHER_ANY))
    assert (e.code, e.path, e.message) == (pb.NO_WATCHER, "/p",
                                           "KeeperErrorCode = No such watcher for /p")
    h.set(a, "/p")
    assert h.take() == [(b, CHANGED, "/p", h.coord.last_zxid)]
