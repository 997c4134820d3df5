"""ZooKeeper's own protocol on a real node: kazoo (ZooKeeper's Python client) unchanged, on the
same tree, sessions and watches as dcli's gRPC clients; and the listener's edges (handshake,
jute.maxbuffer, four-letter words, malformed bytes)."""
from __future__ import annotations

import re
import socket
import struct
import threading

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (BadArgumentsError, BadVersionError, ConnectionLoss, NoNodeError, NodeExistsError,
                              NotEmptyError, RolledBackError, RuntimeInconsistency)

from dcli.client import CoordClient
from tests.waiting import eventually


@pytest.fixture
def kz(server):
    client = KazooClient(hosts=server.zk_address, timeout=15)
    client.start(timeout=15)
    yield client
    client.stop()
    client.close()


def _raw(address: str, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes on a new connection; everything the server answers until it closes."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(payload)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def _connect_request(session_id: int = 0, password: bytes = bytes(16), last_zxid: int = 0) -> bytes:
    body = struct.pack("!iqiqi", 0, last_zxid, 10_000, session_id, len(password)) + password + b"\x00"
    return struct.pack("!i", len(body)) + body


def test_kazoo_reads_and_writes_the_tree_with_zookeepers_answers(kz):
    kz.ensure_path("/zkp/crud")
    assert kz.create("/zkp/crud/a", b"hello") == "/zkp/crud/a"
    data, stat = kz.get("/zkp/crud/a")
    assert (data, stat.version, stat.dataLength, stat.numChildren) == (b"hello", 0, 5, 0)
    assert kz.set("/zkp/crud/a", b"v2").version == 1
    with pytest.raises(BadVersionError):
        kz.set("/zkp/crud/a", b"v3", version=0)
    with pytest.raises(NodeExistsError):
        kz.create("/zkp/crud/a")
    with pytest.raises(NoNodeError):
        kz.get("/zkp/crud/missing")
    assert kz.exists("/zkp/crud/missing") is None
    with pytest.raises(NotEmptyError):
        kz.delete("/zkp/crud")
    with pytest.raises(BadArgumentsError):
        kz.create("/zkp/crud/b\x00")
    # null and empty data are different answers, and stay so
    kz.create("/zkp/crud/null", None)
    kz.create("/zkp/crud/empty", b"")
    assert kz.get("/zkp/crud/null")[0] is None
    assert kz.get("/zkp/crud/empty")[0] == b""
    first = kz.create("/zkp/crud/seq-", b"", sequence=True)
    second = kz.create("/zkp/crud/seq-", b"", sequence=True)
    assert first.startswith("/zkp/crud/seq-") and int(second[-10:]) == int(first[-10:]) + 1
    children, stat = kz.get_children("/zkp/crud", include_data=True)
    assert sorted(children) == sorted(["a", "null", "empty", first[-14:], second[-14:]])
    assert stat.numChildren == 5
    acl, _ = kz.get_acls("/zkp/crud/a")
    assert [(a.perms, a.id.scheme, a.id.id) for a in acl] == [(31, "world", "anyone")]
    kz.delete("/zkp/crud", recursive=True)
    assert kz.exists("/zkp/crud") is None


def test_a_failed_transaction_reports_every_op_as_zookeeper_does(kz):
    kz.create("/zkp/txn", b"0")
    t = kz.transaction()
    t.create("/zkp/txn/one", b"1")
    t.check("/zkp/txn", 7)
    t.delete("/zkp/txn")
    results = t.commit()
    assert [type(r) for r in results] == [RolledBackError, BadVersionError, RuntimeInconsistency]
    assert kz.exists("/zkp/txn/one") is None
    t = kz.transaction()
    t.create("/zkp/txn/one", b"1")
    t.set_data("/zkp/txn", b"1")
    t.check("/zkp/txn", 1)
    created, stat, checked = t.commit()
    assert (created, stat.version, checked) == ("/zkp/txn/one", 1, True)
    kz.delete("/zkp/txn", recursive=True)


def test_one_tree_one_session_table_one_set_of_watches_for_both_protocols(server, kz):
    """An ephemeral made over ZooKeeper's protocol is seen over gRPC and goes with its session;
    a watch set over one protocol fires for a change made over the other."""
    kz.ensure_path("/zkp/both")
    kz.create("/zkp/both/eph", b"mine", ephemeral=True)
    fired = threading.Event()
    kz.create("/zkp/both/data", b"1")
    kz.get("/zkp/both/data", watch=lambda event: fired.set())
    with CoordClient(server.address) as zk:
        data, stat = zk.get("/zkp/both/eph")
        assert data == b"mine" and stat.ephemeralOwner == kz.client_id[0]
        zk.set("/zkp/both/data", b"2")                    # over gRPC
        assert fired.wait(15), "the kazoo watch did not fire for a change made over gRPC"
        seen = threading.Event()
        zk.get_children("/zkp/both", watch=lambda event: seen.set())
        kz.create("/zkp/both/new", b"")                   # over ZooKeeper's protocol
        assert seen.wait(15), "the gRPC watch did not fire for a change made over ZooKeeper's protocol"
        kz.stop()                                         # closeSession: the ephemeral goes at once
        assert zk.exists("/zkp/both/eph") is None


def test_a_session_resumes_on_a_new_connection_and_keeps_its_ephemerals(server):
    """A reconnect with the session's id and password takes the session over (ZooKeeper closes
    its old connection); its ephemerals stay until the session is closed."""
    one = KazooClient(hosts=server.zk_address, timeout=15)
    one.start(timeout=15)
    try:
        one.ensure_path("/zkp/resume")
        one.create("/zkp/resume/eph", b"", ephemeral=True)
        session_id, password = one.client_id
        host, port = server.zk_address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(_connect_request(session_id, password, last_zxid=0))
            answer = b""
            while len(answer) < 41:
                chunk = s.recv(64)
                assert chunk, f"closed after {answer!r}"
                answer += chunk
        _, _, timeout, resumed, _ = struct.unpack_from("!iiiqi", answer)
        assert timeout > 0 and resumed == session_id
        with CoordClient(server.address) as zk:
            assert zk.exists("/zkp/resume/eph").ephemeralOwner == session_id
            # the old connection was closed: kazoo comes back on the same session
            eventually(lambda: one.connected and one.client_id[0] == session_id and one.exists("/zkp/resume"),
                       30, "kazoo back on its session")
            one.stop()                                  # closeSession: the ephemeral goes
            assert zk.exists("/zkp/resume/eph") is None
    finally:
        one.stop()
        one.close()


def test_an_unknown_session_gets_a_zero_timeout_not_a_dropped_connection(server):
    answer = _raw(server.zk_address, _connect_request(session_id=0x1234, password=b"x" * 16))
    length, protocol, timeout, session_id, pw_len = struct.unpack_from("!iiiqi", answer)
    assert (length, protocol, timeout, session_id, pw_len) == (len(answer) - 4, 0, 0, 0, 16)
    assert answer[24:40] == bytes(16)


def test_a_client_that_has_seen_a_newer_zxid_is_refused(server):
    assert _raw(server.zk_address, _connect_request(last_zxid=1 << 60)) == b""


def test_a_packet_over_jute_maxbuffer_closes_the_connection(kz):
    kz.create("/zkp-big", b"x" * (512 * 1024))       # under the limit: stored
    assert len(kz.get("/zkp-big")[0]) == 512 * 1024
    with pytest.raises(ConnectionLoss):
        kz.create("/zkp-too-big", b"x" * (2 * 1024 * 1024))
    eventually(lambda: kz.connected, 30, "kazoo to reconnect")
    assert kz.exists("/zkp-too-big") is None
    kz.delete("/zkp-big")


def test_four_letter_words_behind_the_whitelist(server, tmp_path):
    """ZooKeeper's default whitelist answers `srvr` only; with `*` every word has its answer."""
    srvr = _raw(server.zk_address, b"srvr").decode()
    assert srvr.startswith("Zookeeper version: 3.8.") and "\nMode: standalone\n" in srvr and "\nZxid: 0x" in srvr
    assert _raw(server.zk_address, b"ruok") == b"ruok is not executed because it is not in the whitelist.\n"
    from tests.conftest import ServerProcess

    srv = ServerProcess(tmp_path / "data", "--zk-4lw-whitelist", "*").start()
    try:
        kz = KazooClient(hosts=srv.zk_address, timeout=15)
        kz.start(timeout=15)
        try:
            kz.create("/watched", b"", ephemeral=True)
            kz.get("/watched", watch=lambda event: None)
            assert kz.server_version()[:2] == (3, 8)           # kazoo reads `envi`
            assert _raw(srv.zk_address, b"ruok") == b"imok"
            assert _raw(srv.zk_address, b"isro") == b"rw"
            envi = _raw(srv.zk_address, b"envi").decode()
            assert envi.startswith("Environment:\n") and "\nzookeeper.version=3.8." in envi
            # the node's own sessions (its broker's, its key-value store's) hold watches and
            # ephemerals too: kazoo's are one more of each
            def mntr() -> dict:
                return dict(line.split("\t", 1) for line in _raw(srv.zk_address, b"mntr").decode().splitlines())
            before = mntr()
            kz.create("/watched-too", b"", ephemeral=True)
            kz.exists("/watched-too", watch=lambda event: None)
            after = mntr()
            assert after["zk_server_state"] == "standalone"
            assert int(after["zk_znode_count"]) >= int(before["zk_znode_count"]) + 1
            assert int(after["zk_ephemerals_count"]) >= int(before["zk_ephemerals_count"]) + 1
            assert int(after["zk_watch_count"]) >= int(before["zk_watch_count"]) + 1
            session = f"0x{kz.client_id[0]:x}"
            wchs = _raw(srv.zk_address, b"wchs").decode()
            assert re.fullmatch(r"\d+ connections watching \d+ paths\nTotal watches:\d+\n", wchs), wchs
            assert f"{session}\n\t/watched\n\t/watched-too\n" in _raw(srv.zk_address, b"wchc").decode()
            assert f"/watched\n\t{session}\n" in _raw(srv.zk_address, b"wchp").decode()
            dump = _raw(srv.zk_address, b"dump").decode()
            assert f"{session}:\n\t/watched\n\t/watched-too\n" in dump
            assert f"sid={session}" in _raw(srv.zk_address, b"cons").decode()
            assert "clientPort=" in _raw(srv.zk_address, b"conf").decode()
            assert _raw(srv.zk_address, b"dirs").decode().startswith("datadir_size: ")
            assert _raw(srv.zk_address, b"srst") == b"Server stats reset.\n"
        finally:
            kz.stop()
            kz.close()
    finally:
        srv.kill()


def test_kazoo_authenticates_with_a_digest(kz):
    kz.add_auth("digest", "alice:secret")
    assert kz.exists("/") is not None                  # the connection lives on after auth


def test_an_unknown_auth_scheme_is_authfailed_and_the_connection_closes(server):
    connect = _connect_request()
    scheme, cred = b"nosuch", b"x"
    body = struct.pack("!iii", -4, 100, 0) + struct.pack("!i", len(scheme)) + scheme + struct.pack("!i", len(cred)) + cred
    answer = _raw(server.zk_address, connect + struct.pack("!i", len(body)) + body)
    handshake = 4 + struct.unpack_from("!i", answer)[0]
    xid, zxid, err = struct.unpack_from("!iqi", answer, handshake + 4)
    assert (xid, zxid, err) == (-4, 0, -115)
    assert len(answer) == handshake + 4 + 16             # nothing after it: closed


def test_an_unimplemented_request_gets_zookeepers_error_and_the_connection_goes_on(server):
    connect = _connect_request()
    reconfig = struct.pack("!ii", 1, 16) + struct.pack("!iiiq", -1, -1, -1, -1)
    ping = struct.pack("!ii", -2, 11)
    frames = b"".join(struct.pack("!i", len(p)) + p for p in (reconfig, ping))
    host, port = server.zk_address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(connect + frames)
        data = b""
        while len(data) < 41 + 20 + 20:
            chunk = s.recv(65536)
            assert chunk, f"closed after {data!r}"
            data += chunk
    first = 4 + struct.unpack_from("!i", data)[0]
    replies = {}
    for at in (first, first + 20):
        length, xid, _, err = struct.unpack_from("!iiqi", data, at)
        assert length == 16
        replies[xid] = err
    # reconfig gets ZooKeeper's RECONFIGDISABLED; the ping's answer may come first (clients allow it)
    assert replies == {1: -123, -2: 0}


def _session(address: str):
    """A raw ZooKeeper connection past its handshake: (socket, read_reply)."""
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(_connect_request())
    buffered = bytearray()

    def packet() -> bytes:
        while len(buffered) < 4 or len(buffered) < 4 + struct.unpack_from("!i", buffered)[0]:
            chunk = s.recv(65536)
            assert chunk, "the server closed the connection"
            buffered.extend(chunk)
        n = struct.unpack_from("!i", buffered)[0]
        out = bytes(buffered[4:4 + n])
        del buffered[:4 + n]
        return out
    packet()        # ConnectResponse
    return s, packet


def _frame(xid: int, opcode: int, body: bytes = b"") -> bytes:
    payload = struct.pack("!ii", xid, opcode) + body
    return struct.pack("!i", len(payload)) + payload


def _jute_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!i", len(raw)) + raw


def test_multi_read_answers_each_read_on_its_own(kz, server):
    kz.create("/zkp-mr", b"top")
    kz.create("/zkp-mr/kid", b"")
    ops = b"".join(struct.pack("!i?i", code, False, -1) + _jute_string(path) + b"\x00"
                   for code, path in ((4, "/zkp-mr"), (8, "/zkp-mr"), (4, "/zkp-mr/missing")))
    body = ops + struct.pack("!i?i", -1, True, -1)
    s, packet = _session(server.zk_address)
    with s:
        s.sendall(_frame(7, 22, body))
        reply = packet()
    xid, _, err = struct.unpack_from("!iqi", reply)
    assert (xid, err) == (7, 0)
    at = 16
    kind, done, op_err = struct.unpack_from("!i?i", reply, at)
    assert (kind, done, op_err) == (4, False, 0)
    at += 9
    length = struct.unpack_from("!i", reply, at)[0]
    assert reply[at + 4:at + 4 + length] == b"top"
    at += 4 + length + 68                               # the data, then its Stat
    kind, done, op_err = struct.unpack_from("!i?i", reply, at)
    assert (kind, done, op_err) == (8, False, 0)
    at += 9
    count = struct.unpack_from("!i", reply, at)[0]
    assert count == 1 and reply[at + 8:at + 11] == b"kid"
    at += 4 + 4 + 3
    assert struct.unpack_from("!i?i", reply, at) == (-1, False, -101)       # the missing node, alone
    assert struct.unpack_from("!i?i", reply, at + 13) == (-1, True, -1)
    kz.delete("/zkp-mr", recursive=True)


def test_check_watches_says_whether_the_session_holds_one(server):
    s, packet = _session(server.zk_address)
    with s:
        s.sendall(_frame(1, 17, _jute_string("/") + struct.pack("!i", 2)))       # data watch on /?
        assert struct.unpack_from("!iqi", packet())[::2] == (1, -121)           # NOWATCHER
        s.sendall(_frame(2, 4, _jute_string("/") + b"\x01"))                    # getData / with a watch
        assert struct.unpack_from("!iqi", packet())[::2] == (2, 0)
        s.sendall(_frame(3, 17, _jute_string("/") + struct.pack("!i", 2)))
        assert struct.unpack_from("!iqi", packet())[::2] == (3, 0)
        s.sendall(_frame(4, 17, _jute_string("/") + struct.pack("!i", 1)))       # a child watch: none
        assert struct.unpack_from("!iqi", packet())[::2] == (4, -121)


def test_zookeepers_protocol_over_tls(tmp_path):
    """--zk-secure-listen (ZooKeeper's secureClientPort) with the node's certificates: kazoo with
    the CA connects and works; a plaintext client gets nothing from that port."""
    from dcli.cluster.certs import LocalCA
    from tests.conftest import ServerProcess

    ca = LocalCA.create(tmp_path / "ca")
    node = ca.issue("node", server=True, client=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    srv = ServerProcess(tmp_path / "data", "--cert-file", str(node.cert), "--key-file", str(node.key),
                        "--trusted-ca-file", str(ca.cert_path), "--zk-secure-listen", f"127.0.0.1:{port}").start()
    try:
        secure = KazooClient(hosts=f"127.0.0.1:{port}", timeout=15, use_ssl=True, ca=str(ca.cert_path),
                             verify_certs=True)
        secure.start(timeout=15)
        try:
            secure.create("/over-tls", b"secret")
            assert secure.get("/over-tls")[0] == b"secret"
        finally:
            secure.stop()
            secure.close()
        assert _raw(f"127.0.0.1:{port}", _connect_request()) == b""      # no TLS: no answer
        assert "Traceback" not in srv.log()
    finally:
        srv.kill()
