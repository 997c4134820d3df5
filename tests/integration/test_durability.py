"""Nothing acknowledged is lost: SIGKILL mid-stream and restart, in every fsync mode; damaged logs."""
from __future__ import annotations

import threading

import pytest

from dcli.client import CoordClient
from dcli.wire import errors
from tests.conftest import ServerProcess

WAIT_S = 60


def write_until_killed(srv: ServerProcess, parent: str, min_acked: int) -> list[str]:
    """Stream pipelined sequential creates; SIGKILL the server once min_acked are acknowledged."""
    acked: list[str] = []
    enough = threading.Event()
    zk = CoordClient(srv.address).start()
    zk.create(parent, b"")
    stop = threading.Event()

    def on_done(f):
        try:
            acked.append(f.result())
        except errors.DcliError:
            stop.set()
            return
        if len(acked) >= min_acked:
            enough.set()

    def writer():
        for i in range(50_000):             # bounded; the kill ends it long before
            if stop.is_set():
                return
            try:
                zk.create_async(f"{parent}/item-", str(i).encode(), sequence=True).add_done_callback(on_done)
            except errors.DcliError:
                return
            if i % 200 == 199 and len(acked) < i - 2000:
                enough.wait(0.01)           # keep the window bounded, not a sleep-to-sync
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    assert enough.wait(WAIT_S), "writes were not acknowledged"
    srv.kill()
    stop.set()
    t.join(WAIT_S)
    snapshot = list(acked)
    zk._io._shutdown()
    return snapshot


@pytest.mark.slow
@pytest.mark.parametrize("fsync", ["always", "batch", "off"])
def test_acknowledged_writes_survive_sigkill(tmp_path, fsync):
    srv = ServerProcess(tmp_path / "data", "--fsync", fsync).start()
    try:
        acked = write_until_killed(srv, "/dur", 3000)
        srv.start()
        with CoordClient(srv.address) as zk:
            present = set(zk.get_children("/dur"))
            missing = [p for p in acked if p.rsplit("/", 1)[1] not in present]
            assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
            # the sequence counter continues without reusing a number
            highest = max(int(n.rsplit("-", 1)[1]) for n in present)
            nxt = zk.create("/dur/item-", b"after", sequence=True)
            assert int(nxt.rsplit("-", 1)[1]) == highest + 1
    finally:
        srv.kill()


@pytest.mark.slow
def test_restart_from_snapshot_and_log(tmp_path):
    srv = ServerProcess(tmp_path / "data", "--snapshot-every", "500").start()
    try:
        with CoordClient(srv.address) as zk:
            zk.create("/s", b"")
            futures = [zk.create_async(f"/s/n{i}", str(i).encode()) for i in range(2000)]
            for f in futures:
                f.result(WAIT_S)
            zk.set("/s/n7", b"changed")
        srv.restart()
        with CoordClient(srv.address) as zk:
            assert len(zk.get_children("/s")) == 2000
            assert zk.get("/s/n7")[0] == b"changed"
            assert zk.get("/s/n7")[1].version == 1
        assert list((tmp_path / "data" / "raft" / "snapshot").glob("snapshot.*")), "no snapshot was written"
    finally:
        srv.kill()


def test_writes_piling_up_while_a_snapshot_is_saved_do_not_stall_the_server(tmp_path):
    # A snapshot every 3 writes under 3,000 pipelined creates: writes arrive faster than
    # snapshots are saved, past the point where new writes wait for the next snapshot.
    srv = ServerProcess(tmp_path / "data", "--snapshot-every", "3").start()
    try:
        with CoordClient(srv.address) as zk:
            zk.create("/s", b"")
            futures = [zk.create_async(f"/s/n{i}", b"") for i in range(3000)]
            for f in futures:
                f.result(WAIT_S)
            assert zk.set_async("/s/n7", b"changed").result(WAIT_S).version == 1
        with CoordClient(srv.address) as zk:     # and new sessions open
            assert len(zk.get_children("/s")) == 3000
    finally:
        srv.kill()


def last_segment(data_dir):
    return sorted((data_dir / "raft" / "log").glob("log.*"))[-1]


def test_torn_log_tail_is_dropped(tmp_path):
    srv = ServerProcess(tmp_path / "data").start()
    try:
        with CoordClient(srv.address) as zk:
            zk.create("/kept", b"yes")
        srv.kill()
        seg = last_segment(tmp_path / "data")
        with open(seg, "ab") as f:           # a crash in the middle of writing one more record
            f.write(b"\x00\x01\x02")
        srv.start()
        with CoordClient(srv.address) as zk:
            assert zk.get("/kept")[0] == b"yes"
            zk.create("/after", b"")         # and the log takes new writes
        srv.restart()
        with CoordClient(srv.address) as zk:
            assert zk.exists("/after") is not None
    finally:
        srv.kill()


def test_corrupt_record_in_the_middle_stops_start_up(tmp_path):
    srv = ServerProcess(tmp_path / "data").start()
    with CoordClient(srv.address) as zk:
        for i in range(20):
            zk.create(f"/n{i}", b"payload-%d" % i)
    srv.kill()
    seg = last_segment(tmp_path / "data")
    raw = bytearray(seg.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    seg.write_bytes(bytes(raw))
    with pytest.raises(RuntimeError) as e:
        srv.start()
    assert "corrupt" in str(e.value).lower()
    assert "Traceback" not in str(e.value)


def test_second_server_on_the_same_data_dir_refuses(tmp_path):
    srv = ServerProcess(tmp_path / "data").start()
    try:
        with pytest.raises(RuntimeError) as e:
            ServerProcess(tmp_path / "data").start()
        assert "in use by another dcli server" in str(e.value)
    finally:
        srv.kill()
