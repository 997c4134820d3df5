"""Delivery semantics over an unreliable network (the seed's strategy): a write carries the
session and a sequence number; a retry carries a flag; the server answers a retry of a write it
already applied with the stored result. A fault hook on the server applies a write, drops its
reply and cuts the stream, as a network failure at the worst moment would. The tests write under
/t, the only place the hook drops replies: the node's broker writes to the tree of its own."""
from __future__ import annotations

import pytest

from dcli.client import CoordClient
from dcli.wire import errors
from tests.conftest import ServerProcess


@pytest.fixture
def faulty_server(tmp_path, monkeypatch):
    """A server that applies the first write, then drops its reply and cuts the stream."""
    monkeypatch.setenv("DCLI_FAULT_DROP_WRITE_REPLIES", "1")
    monkeypatch.setenv("DCLI_FAULT_DROP_UNDER", "/t/")
    srv = ServerProcess(tmp_path / "data").start()
    monkeypatch.delenv("DCLI_FAULT_DROP_WRITE_REPLIES")
    monkeypatch.delenv("DCLI_FAULT_DROP_UNDER")
    make_root(srv)
    yield srv
    srv.kill()


def make_root(server) -> None:
    with CoordClient(server.address) as zk:
        zk.create("/t", b"")


def children(server, path: str) -> list[str]:
    with CoordClient(server.address) as zk:
        return sorted(zk.get_children(path))


def test_exactly_once_a_lost_reply_is_answered_from_the_stored_result(faulty_server):
    with CoordClient(faulty_server.address, delivery="exactly-once") as zk:
        made = zk.create("/t/job-", b"x", sequence=True)        # applied; reply lost; retried
        assert made == "/t/job-0000000000"
        assert zk.connected
    assert children(faulty_server, "/t") == ["job-0000000000"]


def test_at_least_once_applies_a_lost_write_twice(faulty_server):
    with CoordClient(faulty_server.address, delivery="at-least-once") as zk:
        made = zk.create("/t/job-", b"x", sequence=True)
        assert made == "/t/job-0000000001"                       # the second application's name
    assert children(faulty_server, "/t") == ["job-0000000000", "job-0000000001"]


def test_at_most_once_reports_the_loss_and_does_not_retry(faulty_server):
    with CoordClient(faulty_server.address) as zk:
        with pytest.raises(errors.ConnectionLossError):
            zk.create("/t/job-", b"x", sequence=True)
        assert zk.exists("/t/job-0000000000") is not None       # it was applied, once
    assert children(faulty_server, "/t") == ["job-0000000000"]


def test_exactly_once_holds_for_a_multi_and_a_set(faulty_server):
    with CoordClient(faulty_server.address, delivery="exactly-once") as zk:
        with zk.transaction() as t:            # the dropped reply: the multi is retried
            t.create("/t/a", b"1")
            t.create("/t/a/seq-", b"2", sequence=True)
        assert t.results == ["/t/a", "/t/a/seq-0000000000"]
        stat = zk.set("/t/a", b"3")
        assert stat.version == 1
    assert children(faulty_server, "/t/a") == ["seq-0000000000"]


def test_stored_results_survive_a_restart(tmp_path):
    """The results are part of the replicated state: a write applied before a crash and sent
    again after the restart (same session, same seq, retry set) is answered from the replayed
    log, not applied again."""
    from dcli.v1 import coord_pb2 as pb

    srv = ServerProcess(tmp_path / "data").start()
    make_root(srv)
    try:
        zk = CoordClient(srv.address, timeout=30, delivery="exactly-once").start()
        try:
            assert zk.create("/t/job-", b"x", sequence=True) == "/t/job-0000000000"
            srv.restart()                                   # SIGKILL, then replay
            again = pb.Request(create=pb.CreateRequest(path="/t/job-", data=b"x", sequential=True),
                               seq=1, retry=True)
            reply = zk._io.submit(again, lambda r: r).result(timeout=60)
            assert not reply.HasField("error") and reply.create.path == "/t/job-0000000000"
            fresh = pb.Request(create=pb.CreateRequest(path="/t/job-", data=b"x", sequential=True),
                               seq=2, retry=True)          # never applied: applied now
            assert zk._io.submit(fresh, lambda r: r).result(timeout=60).create.path == "/t/job-0000000001"
        finally:
            zk.close()
        assert children(srv, "/t") == ["job-0000000000", "job-0000000001"]
    finally:
        srv.kill()


def test_each_policy_against_the_same_faults(tmp_path, monkeypatch):
    """Two dropped replies: exactly-once leaves one znode, at-least-once two more."""
    monkeypatch.setenv("DCLI_FAULT_DROP_WRITE_REPLIES", "2")
    monkeypatch.setenv("DCLI_FAULT_DROP_UNDER", "/t/")
    srv = ServerProcess(tmp_path / "data").start()
    monkeypatch.delenv("DCLI_FAULT_DROP_WRITE_REPLIES")
    monkeypatch.delenv("DCLI_FAULT_DROP_UNDER")
    make_root(srv)
    try:
        with CoordClient(srv.address, delivery="exactly-once") as zk:
            assert zk.create("/t/job-", b"x", sequence=True) == "/t/job-0000000000"
        with CoordClient(srv.address, delivery="at-least-once") as zk:
            assert zk.create("/t/job-", b"x", sequence=True) == "/t/job-0000000002"
        assert children(srv, "/t") == ["job-0000000000", "job-0000000001", "job-0000000002"]
    finally:
        srv.kill()
