"""`dcli lb`'s limits against a real balancer process and real backends: the request head's
deadline and size, the number of client connections, streamed request bodies and their maximum,
the idle timeout of tcp connections, X-Forwarded-* from untrusted clients, and malformed input."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.lb_rig import Rig, memory_kib, upload


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
