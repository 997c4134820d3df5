"""`benchmarks/coord.py --tls` and `benchmarks/broker.py --tls` end to end with tiny sizes: each
starts a plaintext server and a TLS one from its own local CA, runs the workload on both, prints
the table TLS / plaintext and stops both servers. The figures are not checked (timing), only that
every line is there with a ratio and a verdict."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import ROOT

RATIO = r"\s+\d+\.\d\dx\s+"


def _bench(*argv: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCLI_")}
    out = subprocess.run([sys.executable, *argv], capture_output=True, timeout=240, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stdout.decode()[-3000:] + out.stderr.decode()[-3000:]
    return out.stdout.decode()


def test_coord_benchmark_with_tls_compares_a_tls_server_with_a_plaintext_one():
    text = _bench("benchmarks/coord.py", "--tls", "--n", "40", "--m", "200", "--threads", "2",
                  "--repeat", "1", "--max-seconds", "60")
    banners = [line for line in text.splitlines() if line.startswith("dcli tls: started server")]
    assert len(banners) == 1 and banners[0].endswith(", TLS)"), text
    assert "zookeeper: not run with --tls" in text
    table = text.split("TLS vs plaintext", 1)[1]
    for line in ("sync-create p50", "sync-get p50", "async-create", "async-get", "sync-delete p50"):
        assert re.search(re.escape(line) + r" .*" + RATIO + r"(p50 <= 1\.3x|>= 0\.8x): (met|NOT MET)", table), table
    assert re.search(r"connect, first answer .*" + RATIO, table), table


def test_broker_benchmark_with_tls_compares_a_tls_server_with_a_plaintext_one():
    text = _bench("benchmarks/broker.py", "--tls", "--records", "2000", "--latency-records", "50",
                  "--latency-rate", "500", "--repeat", "1", "--max-seconds", "60")
    table = text.split("TLS vs plaintext", 1)[1]
    for line in ("produce, acks=1", "produce, acks=all", "consume"):
        assert re.search(re.escape(line) + r" .*rec/s" + RATIO + r">= 0\.8x: (met|NOT MET)", table), table
    assert re.search(r"end-to-end latency p50 .*" + RATIO + r"p50 <= 1\.3x", table), table
