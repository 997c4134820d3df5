"""The Python client against a real server: operations, watches and their order, pipelining."""
from __future__ import annotations

import queue
import threading

import pytest

from dcli.client import ConnState, CoordClient, EventType
from dcli.wire import errors

WAIT_S = 30


@pytest.fixture
def zk(server):
    client = CoordClient(server.address).start()
    yield client
    client.close()


@pytest.fixture
def zk2(server):
    client = CoordClient(server.address).start()
    yield client
    client.close()


def next_event(q: queue.SimpleQueue):
    return q.get(timeout=WAIT_S)


def test_crud_and_stat(zk, root_path):
    p = root_path
    assert zk.create(p, b"v1") == p
    data, st = zk.get(p)
    assert data == b"v1" and st.version == 0 and st.dataLength == 2 and st.czxid == st.mzxid
    st2 = zk.set(p, b"v22")
    assert st2.version == 1 and st2.mzxid > st.mzxid and st2.czxid == st.czxid
    with pytest.raises(errors.BadVersionError):
        zk.set(p, b"x", version=0)
    assert zk.exists(p + "/none") is None
    zk.create(p + "/c", None)
    kids, pst = zk.get_children(p, include_data=True)
    assert kids == ["c"] and pst.numChildren == 1 and pst.cversion == 1
    assert zk.get(p + "/c")[0] is None
    with pytest.raises(errors.NotEmptyError):
        zk.delete(p)
    zk.delete(p, recursive=True)
    assert zk.exists(p) is None


def test_makepath_and_multi(zk, root_path):
    p = root_path
    assert zk.create(f"{p}/a/b/c", b"x", makepath=True) == f"{p}/a/b/c"
    t = zk.transaction()
    t.create(f"{p}/t1", b"1").create(f"{p}/t1/x", b"2").set_data(f"{p}/a", b"new").check(f"{p}/a/b", 0)
    results = t.commit()
    assert results[0] == f"{p}/t1" and results[1] == f"{p}/t1/x" and results[2].version == 1 and results[3] is True
    t = zk.transaction()
    t.create(f"{p}/t2", b"").delete(f"{p}/missing")
    with pytest.raises(errors.NoNodeError) as e:
        t.commit()
    assert isinstance(e.value.results[1], errors.NoNodeError)
    assert zk.exists(f"{p}/t2") is None          # all or nothing


def test_pipelined_async_requests_complete_in_order(zk, root_path):
    zk.create(root_path, b"")
    futures = [zk.create_async(f"{root_path}/n-", b"x", sequence=True) for _ in range(2000)]
    names = [f.result(WAIT_S) for f in futures]
    assert names == [f"{root_path}/n-{i:010d}" for i in range(2000)]
    gets = [zk.get_async(n) for n in names]
    assert all(g.result(WAIT_S)[0] == b"x" for g in gets)
    assert zk.get_all_children_number(root_path) == 2000


def test_one_time_watches(zk, zk2, root_path):
    p = root_path
    events: queue.SimpleQueue = queue.SimpleQueue()
    assert zk.exists(p, watch=events.put) is None
    zk2.create(p, b"a")
    ev = next_event(events)
    assert (ev.type, ev.path) == (EventType.NODE_CREATED, p)
    zk.get(p, watch=events.put)
    zk2.set(p, b"b")
    zk2.set(p, b"c")                            # one-time: no second event
    assert next_event(events).type == EventType.NODE_DATA_CHANGED
    zk.get_children(p, watch=events.put)
    zk2.create(p + "/kid", b"")
    ev = next_event(events)
    assert (ev.type, ev.path) == (EventType.NODE_CHILDREN_CHANGED, p)
    zk.get(p + "/kid", watch=events.put)
    zk2.delete(p + "/kid")
    ev = next_event(events)
    assert (ev.type, ev.path) == (EventType.NODE_DELETED, p + "/kid")
    zk.exists(p, watch=events.put)
    zk2.delete(p)
    assert next_event(events).type == EventType.NODE_DELETED
    assert events.empty()


def test_persistent_and_recursive_watches(zk, zk2, root_path):
    p = root_path
    zk2.create(p, b"")
    flat: queue.SimpleQueue = queue.SimpleQueue()
    deep: queue.SimpleQueue = queue.SimpleQueue()
    zk.add_watch(p, flat.put, "persistent")
    zk.add_watch(p, deep.put, "persistent_recursive")
    zk2.set(p, b"1")
    zk2.set(p, b"2")
    zk2.create(p + "/a", b"")
    zk2.set(p + "/a", b"x")
    got_flat = [(e.type, e.path) for e in (next_event(flat) for _ in range(3))]
    assert got_flat == [(EventType.NODE_DATA_CHANGED, p), (EventType.NODE_DATA_CHANGED, p),
                        (EventType.NODE_CHILDREN_CHANGED, p)]
    got_deep = [(e.type, e.path) for e in (next_event(deep) for _ in range(4))]
    assert got_deep == [(EventType.NODE_DATA_CHANGED, p), (EventType.NODE_DATA_CHANGED, p),
                        (EventType.NODE_CREATED, p + "/a"), (EventType.NODE_DATA_CHANGED, p + "/a")]
    removed = zk.remove_watches(p, "any")
    assert removed
    assert next_event(flat).type == EventType.PERSISTENT_WATCH_REMOVED
    zk2.set(p, b"3")
    zk.sync(p)
    zk.get(p)
    assert flat.empty()
    with pytest.raises(errors.NoWatcherError):
        zk.remove_watches(p + "/none", "any")


def test_watch_event_arrives_before_the_read_that_sees_the_change(zk, zk2, root_path):
    p = root_path
    zk2.create(p, b"0")
    seen: list = []
    lock = threading.Lock()
    for i in range(1, 50):
        fired = threading.Event()

        def watcher(event, fired=fired):
            with lock:
                seen.append(event.type)
            fired.set()
        zk.get(p, watch=watcher)
        zk2.set(p, str(i).encode())
        # wait until our own read reflects the change: the event must have run before it returns
        while zk.get(p)[0] != str(i).encode():
            pass
        assert fired.is_set(), f"read saw version {i} before its watch event"
    assert len(seen) == 49


def test_ephemerals_go_at_once_on_close(server, zk2, root_path):
    owner = CoordClient(server.address).start()
    owner.create(root_path, b"", ephemeral=True)
    assert owner.get_ephemerals() == [root_path]
    events: queue.SimpleQueue = queue.SimpleQueue()
    assert zk2.exists(root_path, watch=events.put) is not None
    owner.close()
    assert next_event(events).type == EventType.NODE_DELETED
    assert zk2.exists(root_path) is None
    assert owner.state is not ConnState.CONNECTED
    with pytest.raises(errors.DcliError):
        owner.get("/")


def test_ephemeral_cannot_have_children(zk, root_path):
    zk.create(root_path, b"", ephemeral=True)
    with pytest.raises(errors.NoChildrenForEphemeralsError):
        zk.create(root_path + "/c", b"")


def test_bad_input_from_the_client_library(zk, root_path):
    with pytest.raises(errors.InvalidPathError):
        zk.get("no-slash")
    with pytest.raises(errors.DataTooLargeError):
        zk.create(root_path, b"x" * (1024 * 1024 + 1))
    assert zk.create(root_path, b"x" * (1024 * 1024)) == root_path


def test_a_watch_callback_may_call_the_client(zk, zk2, root_path):
    """The usual re-read-and-re-arm pattern: a blocking call from inside a watch callback."""
    zk2.create(root_path, b"0")
    seen: queue.SimpleQueue = queue.SimpleQueue()

    def watcher(event):
        data, _ = zk.get(root_path, watch=watcher)    # re-arm from the event thread
        seen.put(data)
    zk.get(root_path, watch=watcher)
    for value in (b"1", b"2", b"3"):
        zk2.set(root_path, value)
        assert seen.get(timeout=WAIT_S) == value
    assert zk.exists(root_path) is not None         # and the rest of the client still answers


def test_a_listener_may_call_the_client(server):
    answers: queue.SimpleQueue = queue.SimpleQueue()
    client = CoordClient(server.address)
    client.add_listener(lambda state: answers.put(client.exists("/") is not None))
    client.start()
    try:
        assert answers.get(timeout=WAIT_S) is True
    finally:
        client.close()


def test_many_large_replies_are_split_across_frames(zk, root_path):
    zk.create(root_path, b"x" * (1000 * 1024))
    futures = [zk.get_async(root_path) for _ in range(100)]      # ~100 MB of answers
    assert all(len(f.result(WAIT_S)[0]) == 1000 * 1024 for f in futures)


def test_a_request_over_the_servers_limit_fails_at_once(zk):
    with pytest.raises(errors.RequestTooLargeError):
        zk.exists("/" + "p" * (9 * 1024 * 1024))
    assert zk.exists("/") is not None


def test_remove_watch_drops_one_callable_and_the_server_watch_with_the_last(zk, zk2, root_path):
    zk2.create(root_path, b"")
    first: queue.SimpleQueue = queue.SimpleQueue()
    second: queue.SimpleQueue = queue.SimpleQueue()
    zk.add_watch(root_path, first.put, "persistent")
    zk.add_watch(root_path, second.put, "persistent")
    zk.remove_watch(root_path, first.put, "persistent")
    zk2.set(root_path, b"1")
    assert next_event(second).type == EventType.NODE_DATA_CHANGED
    zk.remove_watch(root_path, second.put, "persistent")
    with pytest.raises(errors.NoWatcherError):      # the server holds no watch for us any more
        zk.remove_watches(root_path, "persistent")
    assert first.empty()
