"""`benchmarks/coord.py` end to end with tiny sizes and without ZooKeeper: it starts one dcli
server with its ZooKeeper port, runs the workload through CoordClient over gRPC and through kazoo
over ZooKeeper's protocol, and prints both against the recorded figures, with issue 18's targets
for the kazoo side. The figures are not checked (timing), only that every line is there with a
ratio and a verdict."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import ROOT

RATIO = r"\s+\d+\.\d\dx\s+"


def test_coord_benchmark_runs_kazoo_against_dcli_zookeeper_port_beside_grpc():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCLI_")}
    out = subprocess.run([sys.executable, "benchmarks/coord.py", "--no-zookeeper", "--n", "40", "--m", "200",
                          "--threads", "2", "--repeat", "1", "--max-seconds", "60"],
                         capture_output=True, timeout=240, cwd=ROOT, env=env)
    text = out.stdout.decode()
    assert out.returncode == 0, text[-3000:] + out.stderr.decode()[-3000:]
    assert re.search(r"^dcli-zk: the same server's ZooKeeper protocol on 127\.0\.0\.1:\d+, through kazoo ", text, re.M), text
    assert re.search(r"^dcli-zk run 0$", text, re.M) and re.search(r"^dcli run 0$", text, re.M), text
    grpc_table = text.split("\ndcli vs RECORDED", 1)[1].split("\n\n", 1)[0]
    zk_table = text.split("dcli's ZooKeeper protocol through kazoo vs RECORDED", 1)[1].split("\n\n", 1)[0]
    same_server = text.split("vs dcli's gRPC through CoordClient (same server)", 1)[1]
    for line in ("sync-create", "sync-get", "sync-set", "sync-exists", "sync-delete"):
        assert re.search(line + r" .*" + RATIO + r".*p50 <= 1\.5x ZK: (met|NOT MET)", grpc_table), grpc_table
        assert re.search(line + r" .*" + RATIO + r".*p50 <= 1\.0x ZK: (met|NOT MET)", zk_table), zk_table
    for line in ("async-create", "async-get"):
        assert re.search(line + r" .*" + RATIO + r"ops/s >= 1\.0x ZK: (met|NOT MET)", zk_table), zk_table
    assert re.search(r"targets \(issue 18\): \d of 7 lines met", zk_table), zk_table
    for line in ("sync-get", "async-create", "threads-get-shared\\(2\\)", "connect"):
        assert re.search(r"^  " + line + r" .*" + RATIO, same_server, re.M), same_server
