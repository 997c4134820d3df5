"""A bounded fuzz run over the ZooKeeper listener: random bytes, and well-formed sessions whose
requests are mutated or carry extreme values. The node must answer or close the connection,
never crash or log a traceback, and the tree must be what it was."""
from __future__ import annotations

import random
import socket
import struct
import time

from dcli.client import CoordClient

ROUNDS = 300
DEADLINE_S = 60.0
CHURN_DEADLINE_S = 20.0         # 10,000 connections, or as many as this allows on a slow machine
OPCODES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 100, 101, 102, 103, 104, 105,
           106, 107, -11, 0, 999, -2**31, 2**31 - 1)


def _frame(payload: bytes) -> bytes:
    return struct.pack("!i", len(payload)) + payload


def _connect() -> bytes:
    return _frame(struct.pack("!iqiqi", 0, 0, 10_000, 0, 16) + bytes(16) + b"\x00")


def _string(rng: random.Random) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:
        return struct.pack("!i", -1)
    if choice == 1:
        return struct.pack("!i", rng.choice([2**31 - 1, -2, 1 << 20, 65536]))   # a length past the end
    text = rng.choice([b"/", b"/fuzz", b"/fuzz/" + bytes(rng.randrange(256) for _ in range(8)), b"", b"/\xff\xfe",
                       b"/zookeeper", b"/dcli/auth/users/root"])
    return struct.pack("!i", len(text)) + text


def _request(rng: random.Random) -> bytes:
    body = b"".join(rng.choice([
        lambda: _string(rng),
        lambda: struct.pack("!i", rng.choice([-1, 0, 1, 2**31 - 1, -2**31, rng.randrange(-10, 10)])),
        lambda: struct.pack("!q", rng.choice([-1, 0, 2**63 - 1, -2**63])),
        lambda: bytes([rng.randrange(3)]),
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(12))),
    ])() for _ in range(rng.randrange(6)))
    return _frame(struct.pack("!ii", rng.randrange(-10, 1000), rng.choice(OPCODES)) + body)


def _send(address: str, payload: bytes) -> None:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
    except (ConnectionError, socket.timeout):
        pass            # the server may close first, or answer nothing: both are fine here


def test_the_zookeeper_listener_survives_random_and_mutated_packets(fresh_server):
    rng = random.Random(20261207)
    with CoordClient(fresh_server.address) as zk:
        zk.create("/witness", b"before")
        before = zk.get("/witness")
    deadline = time.monotonic() + DEADLINE_S
    sent = 0
    for round_ in range(ROUNDS):
        if time.monotonic() > deadline:
            break
        kind = round_ % 3
        if kind == 0:           # bytes with no shape at all
            payload = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        elif kind == 1:         # a good handshake, then requests with extreme or broken fields
            payload = _connect() + b"".join(_request(rng) for _ in range(rng.randrange(1, 8)))
        else:                   # a handshake with its fields mutated
            good = bytearray(_connect())
            for _ in range(rng.randrange(1, 4)):
                good[rng.randrange(len(good))] = rng.randrange(256)
            payload = bytes(good)
        _send(fresh_server.zk_address, payload)
        sent += 1
    assert sent >= 100, f"only {sent} rounds within {DEADLINE_S} s"
    with CoordClient(fresh_server.address) as zk:
        assert zk.get("/witness") == before
        assert zk.get_children("/") is not None
    _send(fresh_server.zk_address, b"ruok")
    log = fresh_server.log()
    assert "Traceback" not in log, log[-3000:]
    assert fresh_server.proc.poll() is None


def _open_files(pid: int) -> int:
    import os

    return len(os.listdir(f"/proc/{pid}/fd"))


def test_ten_thousand_connections_opened_and_dropped(fresh_server):
    """Connections that come and go (some after half a handshake) leave nothing behind: the
    node serves on, and its open files come back to where they were."""
    host, port = fresh_server.zk_address.rsplit(":", 1)
    pid = fresh_server.proc.pid
    with CoordClient(fresh_server.address) as zk:
        zk.create("/churn-witness", b"before")
    before = _open_files(pid)
    started = time.monotonic()
    deadline = started + CHURN_DEADLINE_S
    opened = 0
    half = struct.pack("!i", 45) + struct.pack("!iqiq", 0, 0, 10_000, 0)     # a ConnectRequest cut short
    while opened < 10_000 and time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=5) as s:
                if opened % 10 == 0:
                    s.sendall(half)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # RST, no TIME_WAIT
        except OSError:
            pass
        opened += 1
    print(f"{opened} connections in {time.monotonic() - started:.1f} s")
    assert opened >= 1_000, f"only {opened} connections within {CHURN_DEADLINE_S} s"
    from tests.waiting import eventually
    eventually(lambda: _open_files(pid) <= before + 5, 60, f"the node's open files back to {before}")
    with CoordClient(fresh_server.address) as zk:
        assert zk.get("/churn-witness")[0] == b"before"
    assert fresh_server.proc.poll() is None and "Traceback" not in fresh_server.log()
