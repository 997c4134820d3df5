"""Key distribution of the KV store's hash ring for 1, 16 and 256 virtual nodes per node.

For each vnode count it places `--keys` keys on `--nodes` equal nodes and prints each node's
share against the fair 1/N: the largest and smallest share as multiples of it, and the standard
deviation in percent of it. Then it adds one node and prints the fraction of keys that moved
(ideal: 1/(N+1)) and whether every moved key went to the new node. Deterministic: the keys are
`key-0` ... `key-<n>`, so runs compare.

    .venv/bin/python benchmarks/kv_ring.py
    .venv/bin/python benchmarks/kv_ring.py --nodes 5 --keys 200000 --vnodes 1 16 256 1024
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dcli_server.kv.ring import HashRing  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--vnodes", type=int, nargs="+", default=[1, 16, 256])
    args = parser.parse_args()

    nodes = [f"node-{i}" for i in range(1, args.nodes + 1)]
    keys = [b"key-%d" % i for i in range(args.keys)]
    fair = args.keys / args.nodes
    print(f"{args.keys} keys on {args.nodes} nodes of weight 1; shares relative to the fair "
          f"1/{args.nodes}; then node-{args.nodes + 1} joins (ideal move 1/{args.nodes + 1} = "
          f"{1 / (args.nodes + 1):.1%})")
    print(f"{'vnodes':>7} {'max/fair':>9} {'min/fair':>9} {'stddev':>8} {'moved':>7} "
          f"{'only to new':>11} {'place/s':>9}")
    for vnodes in args.vnodes:
        ring = HashRing(nodes, vnodes=vnodes)
        started = time.perf_counter()
        owners = [ring.owner(k) for k in keys]
        rate = len(keys) / (time.perf_counter() - started)
        counts = Counter(owners)
        per_node = [counts.get(n, 0) for n in nodes]
        bigger = ring.with_node(f"node-{args.nodes + 1}")
        after = [bigger.owner(k) for k in keys]
        moved = [(a, b) for a, b in zip(owners, after) if a != b]
        only_new = all(b == f"node-{args.nodes + 1}" for _, b in moved)
        print(f"{vnodes:>7} {max(per_node) / fair:>9.3f} {min(per_node) / fair:>9.3f} "
              f"{statistics.pstdev(per_node) / fair:>8.1%} {len(moved) / len(keys):>7.1%} "
              f"{'yes' if only_new else 'NO':>11} {rate:>9,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
