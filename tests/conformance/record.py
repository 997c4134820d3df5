"""Record ZooKeeper's answers to the conformance scenarios (recording.py owns the list and the
format) where Debian's `zookeeper` package and java are installed:

    python -m tests.conformance.record              # every recorded scenario (make record-zk)
    python -m tests.conformance.record multi errors # just these

Starts a standalone ZooKeeper 3.8 as `make conformance` does (reference_zk.py), runs each scenario
against it alone, writes tests/conformance/recorded/<name>.json and stops it by its pid. Recording
every scenario also removes the files of scenarios no longer recorded.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from tests.conformance import recording, reference_zk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.record",
                                     description="record ZooKeeper 3.8's answers to the conformance scenarios")
    parser.add_argument("scenarios", nargs="*", metavar="scenario", help="default: every recorded scenario")
    parser.add_argument("--out", type=Path, default=recording.DIR, help="directory (default: %(default)s)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.scenarios if n not in recording.RECORDED]
    if unknown:
        print(f"record: no recorded scenario {unknown[0]!r} (one of: {', '.join(recording.RECORDED)})",
              file=sys.stderr)
        return 2
    why = reference_zk.missing()
    if why:
        print(f"record: {why} (Debian: apt-get install zookeeper default-jre-headless)", file=sys.stderr)
        return 1
    names = args.scenarios or list(recording.RECORDED)
    logging.getLogger("kazoo").setLevel(logging.ERROR)     # big_packets' connection losses are expected
    with tempfile.TemporaryDirectory(prefix="record-zk-") as tmp:
        server = reference_zk.start(Path(tmp))
        try:
            version = reference_zk.version(server)
            if not version.startswith("3.8."):
                print(f"record: the reference is ZooKeeper 3.8; this one is {version!r}", file=sys.stderr)
                return 1
            for name in names:
                steps = recording.run(name, server.address)
                path = recording.save(name, steps, version, args.out)
                print(f"{name}: {len(steps)} steps from ZooKeeper {version} -> {path}")
        finally:
            server.stop()
    if not args.scenarios:
        for stale in sorted(args.out.glob("*.json")):
            if stale.stem not in recording.RECORDED:
                stale.unlink()
                print(f"removed {stale} (no longer recorded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
