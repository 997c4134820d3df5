"""Sessions: expiry after a client dies, reconnects that keep the session, restarts of the server."""
from __future__ import annotations

import queue
import signal
import subprocess
import sys
import textwrap

import pytest

from dcli.client import ConnState, CoordClient, EventType
from dcli.wire import errors
from tests.conftest import ROOT, ServerProcess, _readline

WAIT_S = 60


def test_timeout_is_negotiated_into_the_servers_bounds(server):
    with CoordClient(server.address, timeout=1.0) as zk:
        assert zk.session_timeout_ms == 4000
    with CoordClient(server.address, timeout=100.0) as zk:
        assert zk.session_timeout_ms == 40000
    with CoordClient(server.address, timeout=12.0) as zk:
        assert zk.session_timeout_ms == 12000


@pytest.mark.slow
def test_ephemeral_goes_after_the_timeout_when_its_client_is_sigkilled(server, root_path):
    script = textwrap.dedent(f"""
        import sys, threading
        from dcli.client import CoordClient
        zk = CoordClient({server.address!r}, timeout=4.0).start()
        zk.create({root_path!r}, b"mine", ephemeral=True)
        print(hex(zk.session_id), flush=True)
        threading.Event().wait()
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        session = _readline(owner, WAIT_S)
        assert session.startswith("0x")
        with CoordClient(server.address) as watcher:
            events: queue.SimpleQueue = queue.SimpleQueue()
            st = watcher.exists(root_path, watch=events.put)
            assert st is not None and hex(st.ephemeralOwner) == session
            owner.send_signal(signal.SIGKILL)
            owner.wait(WAIT_S)
            ev = events.get(timeout=WAIT_S)
            assert (ev.type, ev.path) == (EventType.NODE_DELETED, root_path)
            assert watcher.exists(root_path) is None
    finally:
        owner.kill()


@pytest.mark.slow
def test_session_survives_a_server_restart_within_its_timeout(tmp_path):
    srv = ServerProcess(tmp_path / "data").start()
    states: queue.SimpleQueue = queue.SimpleQueue()
    events: queue.SimpleQueue = queue.SimpleQueue()
    zk = CoordClient(srv.address, timeout=20.0)
    zk.add_listener(states.put)
    zk.start()
    try:
        assert states.get(timeout=WAIT_S) is ConnState.CONNECTED
        sid = zk.session_id
        zk.create("/eph", b"e", ephemeral=True)
        zk.create("/watched", b"0")
        zk.get("/watched", watch=events.put)
        srv.restart()                       # SIGKILL, then the same port and data dir
        assert states.get(timeout=WAIT_S) is ConnState.SUSPENDED
        assert states.get(timeout=WAIT_S) is ConnState.CONNECTED
        assert zk.session_id == sid
        st = zk.exists("/eph")
        assert st is not None and st.ephemeralOwner == sid
        with CoordClient(srv.address) as other:
            other.set("/watched", b"1")     # the watch was re-registered on the new stream
        ev = events.get(timeout=WAIT_S)
        assert (ev.type, ev.path) == (EventType.NODE_DATA_CHANGED, "/watched")
    finally:
        zk.close()
        srv.kill()


def test_resuming_an_unknown_session_is_refused(server):
    from dcli.client.session import SessionIO

    io = SessionIO(server.address, 10.0, 5.0)
    io.session_id = 0x123456789
    io.password = b"x" * 16
    with pytest.raises(errors.SessionExpiredError):
        io.start()


@pytest.mark.slow
def test_heartbeats_keep_an_idle_session_alive(server, root_path):
    with CoordClient(server.address, timeout=4.0) as zk, CoordClient(server.address) as watcher:
        zk.create(root_path, b"", ephemeral=True)
        events: queue.SimpleQueue = queue.SimpleQueue()
        watcher.exists(root_path, watch=events.put)
        # twice the session timeout with no request from zk: only its pings keep it alive
        with pytest.raises(queue.Empty):
            events.get(timeout=8.0)
        assert zk.exists(root_path).ephemeralOwner == zk.session_id


@pytest.mark.slow
def test_a_frozen_client_loses_its_session_and_learns_it_on_waking(server, root_path):
    script = textwrap.dedent(f"""
        import threading
        from dcli.client import CoordClient
        done = threading.Event()
        def state(s):
            print(s.value, flush=True)
            if s.value == "LOST":
                done.set()
        zk = CoordClient({server.address!r}, timeout=4.0)
        zk.add_listener(state)
        zk.start()
        zk.create({root_path!r}, b"", ephemeral=True)
        print("ready", flush=True)
        done.wait(120)
        try:
            zk.get("/")
        except Exception as e:
            print(type(e).__name__, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert _readline(proc, WAIT_S) == "CONNECTED"
        assert _readline(proc, WAIT_S) == "ready"
        with CoordClient(server.address) as watcher:
            events: queue.SimpleQueue = queue.SimpleQueue()
            assert watcher.exists(root_path, watch=events.put) is not None
            proc.send_signal(signal.SIGSTOP)        # no pings: the server expires the session
            ev = events.get(timeout=WAIT_S)
            assert (ev.type, ev.path) == (EventType.NODE_DELETED, root_path)
        proc.send_signal(signal.SIGCONT)
        lines = [_readline(proc, WAIT_S)]
        while lines[-1] not in ("SessionExpiredError", ""):
            lines.append(_readline(proc, WAIT_S))
        # told by the server at once, or by its own read timeout first and the server on resume
        assert lines in (["LOST", "SessionExpiredError"], ["SUSPENDED", "LOST", "SessionExpiredError"])
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()


@pytest.mark.slow
def test_a_frozen_server_is_noticed_and_the_session_comes_back(fresh_server):
    states: queue.SimpleQueue = queue.SimpleQueue()
    zk = CoordClient(fresh_server.address, timeout=10.0)
    zk.add_listener(states.put)
    zk.start()
    try:
        assert states.get(timeout=WAIT_S) is ConnState.CONNECTED
        sid = zk.session_id
        fresh_server.proc.send_signal(signal.SIGSTOP)   # no RST, no answers: only a read timeout tells
        assert states.get(timeout=WAIT_S) is ConnState.SUSPENDED
        fresh_server.proc.send_signal(signal.SIGCONT)
        assert states.get(timeout=WAIT_S) is ConnState.CONNECTED
        assert zk.session_id == sid and zk.exists("/") is not None
    finally:
        fresh_server.proc.send_signal(signal.SIGCONT)
        zk.close()
