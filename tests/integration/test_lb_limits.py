"""`dcli lb`'s limits against a real balancer process and real backends: the request head's
deadline and size, the number of client connections, streamed request bodies and their maximum,
the idle timeout of tcp connections, X-Forwarded-* from untrusted clients, and malformed input."""
from __future__ import annotations

import http.client
import random
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from dcli.lb import admin
from tests.integration.lb_rig import WAIT_S, Rig, memory_kib, upload


@pytest.fixture
def rig(server, root_path, tmp_path):
    r = Rig(server, root_path, tmp_path)
    yield r
    r.close()
    for log in sorted(tmp_path.glob("*.log")):       # shown by pytest when the test failed
        print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")


def test_large_uploads_stream_through_in_bounded_memory(rig):
    """4 x 50 MiB at once, Content-Length and chunked: each arrives whole at the backend while
    the balancer's peak resident memory grows by far less than one body."""
    rig.backends("a")
    lb = rig.lb("round-robin", "http", "--health-interval", "0")
    pid = lb.proc.proc.pid
    assert lb.backend_of("/warm-up", "POST") == "a"
    before = memory_kib(pid, "VmHWM")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: upload(lb.address, 50, chunked=i % 2 == 1), range(4)))
    grown_mib = (memory_kib(pid, "VmHWM") - before) / 1024
    print(f"balancer VmHWM {before / 1024:.1f} MiB before, grew {grown_mib:.1f} MiB for 4 x 50 MiB")
    for status, doc, digest in results:
        assert status == 200, doc
        assert doc["bytes"] == 50 * 2**20 and doc["sha256"] == digest
    assert grown_mib < 40, f"the balancer's peak memory grew {grown_mib:.0f} MiB"


def connect(lb) -> socket.socket:
    host, port = lb.address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=WAIT_S)


def until_closed(s: socket.socket) -> bytes:
    """Everything the balancer sends until it closes the connection (a reset counts as a close)."""
    received = b""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data
    raise AssertionError(f"the connection was still open after {WAIT_S}s; received {received[:200]!r}")


def exchange(lb, raw: bytes) -> bytes:
    """Send raw bytes on a new connection, stop sending, and read until the balancer closes."""
    with connect(lb) as s:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        return until_closed(s)


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def test_a_slow_request_head_is_cut_at_the_head_deadline(rig):
    """A slow-loris client sends a header line whenever 0.2 s pass without an answer, well within
    any per-read timeout; the head's own deadline (1 s) still ends it: 408, then the close."""
    rig.backends("a")
    lb = rig.lb("round-robin", "http", "--health-interval", "0", "--client-header-timeout", "1")
    with connect(lb) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(0.2)
        sent, received = 0, b""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                data = s.recv(4096)
            except socket.timeout:
                s.sendall(f"X-Slow-{sent}: 1\r\n".encode())
                sent += 1
                continue
            if not data:
                break
            received += data
        else:
            raise AssertionError(f"still open after {WAIT_S}s and {sent} header lines")
    assert status_of(received) == 408 and b"request head not received in time" in received
    assert sent >= 1
    assert lb.backend_of() == "a"               # and the balancer serves the next client


def test_too_many_or_too_large_headers_get_431_and_the_connection_closes(rig):
    rig.backends("a")
    lb = rig.lb("round-robin", "http", "--health-interval", "0", "--max-headers", "10",
                "--max-header-size", "2k")
    ten = b"".join(b"X-H%d: v\r\n" % i for i in range(9))
    answer = exchange(lb, b"GET / HTTP/1.1\r\nHost: x\r\n" + ten + b"\r\n")       # exactly the limit
    assert status_of(answer) == 200 and b'"backend": "a"' in answer
    answer = exchange(lb, b"GET / HTTP/1.1\r\nHost: x\r\n" + ten + b"X-H9: v\r\n\r\n")
    assert status_of(answer) == 431 and b"11 header fields, more than the 10 allowed" in answer
    answer = exchange(lb, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 3000 + b"\r\n\r\n")
    assert status_of(answer) == 431 and b"more than the 2048 allowed" in answer
    with connect(lb) as s:                       # a head that never ends, sent in small pieces
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for i in range(100):
            try:
                s.sendall(b"X-More-%d: %s\r\n" % (i, b"v" * 100))
            except OSError:                      # closed once the head passed the limit
                break
        answer = until_closed(s)
    assert status_of(answer) == 431
    assert lb.backend_of() == "a"


def test_connections_beyond_the_cap_are_closed_at_once(rig):
    rig.backends("a")
    lb = rig.lb("round-robin", "http", "--health-interval", "0", "--max-connections", "2")
    host, port = lb.address.rsplit(":", 1)
    held = [http.client.HTTPConnection(host, int(port), timeout=WAIT_S) for _ in range(2)]
    for conn in held:                           # each answered: both are accepted and kept alive
        conn.request("GET", "/held")
        assert conn.getresponse().read()
    with connect(lb) as s:
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            pass
        assert until_closed(s) == b""           # closed without an answer
    assert admin.fetch(lb.admin)["clients"]["refused"] >= 1
    lb.proc.expect(lambda s: s.startswith("refused 1 client connection: --max-connections 2 reached"), "refused")
    held[0].close()
    deadline = time.monotonic() + WAIT_S        # the close reaches the balancer: room for one more
    while True:
        try:
            if lb.get("/again")[0] == 200:
                break
        except (OSError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline, "no connection accepted after one of two closed"
    held[1].close()


def test_a_body_over_the_maximum_gets_413_and_never_reaches_the_backend(rig):
    rig.backends("a")
    lb = rig.lb("round-robin", "http", "--health-interval", "0", "--client-max-body-size", "1k")
    status, doc = lb.get("/fits", "POST", b"x" * 1024)
    assert status == 200 and doc["bytes"] == 1024
    answer = exchange(lb, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\nExpect: 100-continue\r\n\r\n")
    assert status_of(answer) == 413 and b"request body of 1025 bytes" in answer
    assert b"100 Continue" not in answer
    chunk = b"3e8\r\n" + b"y" * 1000 + b"\r\n"
    answer = exchange(lb, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 3 + b"0\r\n\r\n")
    assert status_of(answer) == 413
    assert lb.stats_json()["a"]["requests"] == 1


def test_a_tcp_connection_idle_both_ways_is_closed(rig):
    rig.backends("a", mode="tcp")
    lb = rig.lb("round-robin", "tcp", "--health-interval", "0", "--idle-timeout", "1")
    with connect(lb) as s:
        s.sendall(b"hello\n")
        assert s.recv(4096).startswith(b"a 1 hello")
        assert until_closed(s) == b""            # nothing more either way: closed, both sides
    deadline = time.monotonic() + WAIT_S
    while lb.stats_json()["a"]["active"] != 0:
        assert time.monotonic() < deadline, "the backend's side is still counted active"


def test_forwarded_headers_from_a_client_are_replaced_unless_it_is_a_trusted_proxy(rig):
    rig.backends("a")
    claims = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
              "Forwarded": "for=6.6.6.6", "X-Real-IP": "6.6.6.6"}
    lb = rig.lb("round-robin", "http", "--health-interval", "0")
    status, doc = lb.get("/", headers=claims)
    assert status == 200
    assert (doc["xff"], doc["xfp"], doc["xfh"]) == ("127.0.0.1", "http", lb.address)
    assert doc["forwarded"] is None and doc["real_ip"] is None
    trusting = rig.lb("round-robin", "http", "--health-interval", "0", "--trusted-proxy", "10.0.0.0/8",
                      "--trusted-proxy", "127.0.0.0/8")
    status, doc = trusting.get("/", headers=claims)
    assert status == 200
    assert (doc["xff"], doc["xfp"], doc["xfh"]) == ("6.6.6.6, 127.0.0.1", "https", "evil.example")
    assert doc["forwarded"] == "for=6.6.6.6" and doc["real_ip"] == "6.6.6.6"


SEEDS = [
    b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"PUT /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
]
TOKENS = [b"\r\n", b"\n", b":", b" ", b"\x00", b"\xff", b"Content-Length: 99999999999999999999\r\n",
          b"Transfer-Encoding: chunked\r\n", b"Content-Length: -1\r\n", b"ffffffffffffffff\r\n",
          b"Host: \r\n", b"\r\n\r\n", b"HTTP/9.9", b"%00", b"X" * 5000]


def mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(data) + 1)
        what = rng.randrange(5)
        if what == 0 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif what == 1:
            data[at:at] = rng.choice(TOKENS)
        elif what == 2:
            del data[at:at + rng.randint(1, 20)]
        elif what == 3:
            data[at:at] = data[at:at + rng.randint(1, 40)] * rng.randint(1, 4)
        else:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 30)))
    return bytes(data)


def test_mutated_request_heads_never_break_the_balancer(rig):
    """500 random mutations of request heads (a fixed seed, so a failure can be replayed), each on
    its own connection: none may crash the balancer or leave a traceback in its log, and it still
    proxies a good request afterwards."""
    rig.backends("a")
    lb = rig.lb("round-robin", "http", "--health-interval", "0", "--client-header-timeout", "2",
                "--client-body-timeout", "2", "--max-header-size", "8k")
    rng = random.Random(20261207)
    answered = Counter()
    deadline = time.monotonic() + 240
    for i in range(500):
        assert time.monotonic() < deadline, f"only {i} cases in 240 s: {answered}"
        raw = mutate(rng, rng.choice(SEEDS))
        try:
            answer = exchange(lb, raw)
        except OSError:
            answer = b""
        answered[answer[9:12].decode(errors="replace") if answer.startswith(b"HTTP/1.") else "closed"] += 1
    assert lb.proc.proc.poll() is None, lb.proc.stderr()
    assert lb.backend_of("/after") == "a"
    log = lb.proc.stderr()
    assert "Traceback" not in log and "exception" not in log.lower(), log
    print(f"answers to the mutated requests: {dict(answered)}")
    assert answered["400"] > 0 and answered["200"] > 0


def active(lb, name: str) -> int:
    """Requests in progress at backend `name`, from the balancer's /stats."""
    address = lb.rig.address[name]
    return next(b["active"] for b in admin.fetch(lb.admin)["backends"] if b["address"] == address)


def test_a_client_that_reads_none_of_its_response_is_closed_after_the_send_timeout(rig):
    rig.backends("a")
    lb = rig.lb("round-robin", "http", "--health-interval", "0", "--send-timeout", "1")
    size = 256 * 2**20                       # far more than the sockets between us can hold
    with connect(lb) as s:
        s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
        deadline = time.monotonic() + WAIT_S
        while active(lb, "a") != 1:          # the response is on its way, and we read none of it
            assert time.monotonic() < deadline, "the request never reached the backend"
        while active(lb, "a") != 0:          # the balancer gives up on us and on the backend's response
            assert time.monotonic() < deadline, "the balancer still waits for a client that does not read"
        received = len(until_closed(s))
    assert 0 < received < size
    assert lb.backend_of() == "a"
