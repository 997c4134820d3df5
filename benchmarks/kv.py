"""Key-value store throughput and latency: one node (N=1) against a 3-node local cluster (N=3,
R=W=2), then the key distribution of the hash ring for 1, 16 and 256 virtual nodes.

Each phase runs `--threads` client threads (one KVClient each, every thread on its own node in
the cluster) doing `--ops` requests in all with `--size`-byte values: puts of fresh keys, then
gets of the same keys. It prints ops/s, p50 and p99 per phase, and the cluster's throughput as a
fraction of one node's (target: at least 50%). Servers are started here, on 127.0.0.1 ports
picked free, with data in a temporary directory (fsync on: every put is durable on W nodes
before its answer), and stopped by their own pids.

    .venv/bin/python benchmarks/kv.py
    .venv/bin/python benchmarks/kv.py --ops 4000 --threads 16 --json /tmp/kv.json
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dcli.client.kv import KVClient  # noqa: E402
from dcli_server.kv.ring import HashRing  # noqa: E402


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_nodes(base: Path, count: int) -> tuple[list[subprocess.Popen], list[str]]:
    ports = free_ports(2 * count)                   # a client port and a peer port each
    addresses = [f"127.0.0.1:{p}" for p in ports[:count]]
    peers = ",".join(f"{i}={a}/{p}" for i, (a, p) in enumerate(zip(addresses, ports[count:]), 1)) if count > 1 else None
    procs = []
    for i, address in enumerate(addresses, 1):
        args = [sys.executable, "-m", "dcli_server", "--listen", address, "--zk-listen", "none", "--data-dir", str(base / f"node-{i}")]
        if peers:
            args += ["--node-id", str(i), "--peers", peers]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
        procs.append(proc)
    for proc in procs:
        line = proc.stdout.readline().decode()
        if not line.startswith("dcli server listening"):
            stop(procs)
            raise SystemExit(f"a server did not start: {line!r}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:      # every node sees every other one up
        try:
            if all(all(n.up for n in KVClient(a).ring().nodes) for a in addresses):
                return procs, addresses
        except Exception:  # noqa: BLE001 - still starting
            pass
        time.sleep(0.1)
    stop(procs)
    raise SystemExit("the cluster did not come up within 60 s")


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def run_phase(addresses: list[str], op: str, ops: int, threads: int, value: bytes, tag: str,
              **quorum) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = ops // threads

    def work(t: int) -> None:
        mine = []
        with KVClient(addresses[t % len(addresses)]) as kv:
            for i in range(per_thread):
                key = f"{tag}/{t}/{i}"
                started = time.perf_counter()
                if op == "put":
                    kv.put(key, value, w=quorum.get("w"))
                else:
                    got = kv.get(key, r=quorum.get("r"))
                    assert got.found
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"ops_per_s": len(latencies) / elapsed, "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


def distribution(nodes: int, keys: int, vnode_counts: list[int]) -> list[dict]:
    names = [str(i) for i in range(1, nodes + 1)]
    fair = keys / nodes
    rows = []
    for vnodes in vnode_counts:
        ring = HashRing(names, vnodes=vnodes)
        counts = Counter(ring.owner(b"key-%d" % i) for i in range(keys))
        per = [counts.get(n, 0) for n in names]
        rows.append({"vnodes": vnodes, "keys_per_node": per, "max_over_fair": max(per) / fair,
                     "min_over_fair": min(per) / fair, "stddev_pct": statistics.pstdev(per) / fair * 100})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="requests per phase")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--size", type=int, default=100, help="value bytes")
    parser.add_argument("--keys", type=int, default=100_000, help="keys placed for the distribution")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    value = os.urandom(args.size // 2).hex().encode()[:args.size]
    results: dict = {"config": vars(args) | {"json": str(args.json)}}
    print(f"{args.ops} requests per phase, {args.threads} client threads, {args.size}-byte values, fsync on")
    print(f"{'setup':<28} {'op':<4} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    with tempfile.TemporaryDirectory(prefix="dcli-kv-bench-") as tmp:
        for name, count, quorum in (("1 node, N=1", 1, {}), ("3 nodes, N=3 R=2 W=2", 3, {"r": 2, "w": 2})):
            procs, addresses = start_nodes(Path(tmp) / f"n{count}", count)
            try:
                for op in ("put", "get"):
                    r = run_phase(addresses, op, args.ops, args.threads, value, f"b{count}", **quorum)
                    results[f"{count}/{op}"] = r
                    print(f"{name:<28} {op:<4} {r['ops_per_s']:>8,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
            finally:
                stop(procs)
    for op in ("put", "get"):
        ratio = results[f"3/{op}"]["ops_per_s"] / results[f"1/{op}"]["ops_per_s"]
        results[f"ratio/{op}"] = ratio
        print(f"3 nodes / 1 node, {op}: {ratio:.0%} (target 50%: {'met' if ratio >= 0.5 else 'NOT MET'})")
    print(f"\nkey distribution: {args.keys} keys on 3 nodes of weight 1 (first replica), relative to the fair third")
    print(f"{'vnodes':>7} {'keys per node':>24} {'max/fair':>9} {'min/fair':>9} {'stddev':>7}")
    results["distribution"] = distribution(3, args.keys, [1, 16, 256])
    for row in results["distribution"]:
        print(f"{row['vnodes']:>7} {' '.join(f'{n:>7}' for n in row['keys_per_node']):>24} "
              f"{row['max_over_fair']:>9.3f} {row['min_over_fair']:>9.3f} {row['stddev_pct']:>6.1f}%")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
