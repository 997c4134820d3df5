"""Bounds at the edge of the coordination service, on a real server: a path too long, too many
watches for one session, and a client that pipelines reads of a large znode without reading
the answers (the server stops reading it, and its memory stays bounded)."""
from __future__ import annotations

import threading

import grpc
import pytest

from dcli.client import CoordClient
from dcli.v1 import coord_pb2 as pb
from dcli.v1 import coord_pb2_grpc as pb_grpc
from dcli.wire.errors import BadArgumentsError
from tests.conftest import ServerProcess
from tests.waiting import eventually

WAIT_S = 60
BIG = 1024 * 1024 - 1024            # just under --max-data-bytes' default
PIPELINED = 300
ROUND_TRIPS = 500


@pytest.fixture
def bounded(tmp_path):
    srv = ServerProcess(tmp_path / "data", "--max-watches-per-session", "3",
                        "--max-outstanding-requests", "8").start()
    yield srv
    srv.kill()


def test_a_path_past_the_limit_is_refused_before_it_is_looked_up(bounded):
    with CoordClient(bounded.address) as zk:
        with pytest.raises(BadArgumentsError, match="path of 4097 bytes exceeds the limit of 4096 bytes"):
            zk.create("/" + "p" * 4096, b"")
        with pytest.raises(BadArgumentsError, match="exceeds the limit"):
            zk.exists("/" + "é" * 3000)                   # bytes, not characters
        zk.create("/" + "p" * 4095, b"")                  # at the limit: fine
        assert zk.exists("/" + "p" * 4095) is not None


def test_a_session_holds_at_most_its_watches(bounded):
    with CoordClient(bounded.address) as zk:
        for i in range(3):
            zk.create(f"/w{i}", b"")
            zk.get(f"/w{i}", watch=lambda event: None)
        zk.get("/w0", watch=lambda event: None)          # the same watch again: not a new one
        zk.create("/w3", b"")
        with pytest.raises(BadArgumentsError, match="too many watches for session .*the limit is 3"):
            zk.get("/w3", watch=lambda event: None)
        assert zk.get("/w3")[0] == b""                    # without a watch it is answered


def _rss_peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_a_client_that_does_not_read_its_answers_stops_being_read(bounded):
    """300 pipelined reads of a 1 MiB znode from a client that reads no answer: without the
    limit the server held every answer (about 300 MB); with 8 outstanding it holds a few."""
    with CoordClient(bounded.address) as zk:
        zk.create("/big", b"x" * BIG)
    before = _rss_peak_kib(bounded.proc.pid)
    sent = threading.Event()

    def frames():
        yield pb.ClientFrame(connect=pb.Connect(timeout_ms=30000))
        for xid in range(1, PIPELINED + 1):
            yield pb.ClientFrame(requests=[pb.Request(xid=xid, get_data=pb.GetDataRequest(path="/big"))])
        sent.set()

    channel = grpc.insecure_channel(bounded.address, options=[("grpc.max_receive_message_length", 64 << 20)])
    try:
        call = pb_grpc.CoordinationStub(channel).Session(frames(), timeout=WAIT_S)
        assert sent.wait(WAIT_S)                   # all handed to gRPC (they fit in its buffers)
        # many round trips of another session: turns of the server's loop, in each of which it
        # could read the first stream on; unbounded, it would have read all 300 by then
        with CoordClient(bounded.address) as other:
            for _ in range(ROUND_TRIPS):
                other.exists("/big")
        grown_mib = (_rss_peak_kib(bounded.proc.pid) - before) / 1024
        assert grown_mib < 100, f"the server grew by {grown_mib:.0f} MiB for a client that reads nothing"
        # reading the answers lets the rest through, in order
        xids = []
        for frame in call:
            xids += [i.response.xid for i in frame.items if i.WhichOneof("kind") == "response"]
            if len(xids) == PIPELINED:
                break
        assert xids == list(range(1, PIPELINED + 1))
        call.cancel()
    finally:
        channel.close()
    with CoordClient(bounded.address) as zk:
        assert zk.exists("/big").data_length == BIG


def test_one_client_address_holds_at_most_max_client_cnxns_sessions(tmp_path):
    """The node's own broker reaches its tree in process, not as a client from 127.0.0.1: once
    it is registered and controller, the clients here still get all 3 sessions, and a 4th is
    refused."""
    from dcli.wire.errors import ConnectionLossError

    srv = ServerProcess(tmp_path / "cnxns", "--max-client-cnxns", "3").start()
    held: list[CoordClient] = [CoordClient(srv.address).start()]
    try:
        eventually(lambda: held[0].exists("/brokers/ids/1") and held[0].get_children("/controller"),
                   WAIT_S, "the broker registered and controller")
        refused = None
        for _ in range(4):
            try:
                held.append(CoordClient(srv.address, dial_timeout=1.0).start())
            except ConnectionLossError as e:
                refused = e
                break
        assert refused is not None and len(held) == 3
        assert "too many connections from 127.0.0.1: the limit is 3" in str(refused)
        assert "too many connections from 127.0.0.1 - max is 3" in srv.log()
        held.pop().close()
        with CoordClient(srv.address) as again:              # one left: there is room again
            assert again.exists("/") is not None
    finally:
        for zk in held:
            zk.close()
        srv.kill()
