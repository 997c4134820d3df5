"""`python -m dcli.demo --server ... --id ...`: one demo worker process (see worker.py)."""
import argparse
import sys

from dcli.demo.worker import run

ap = argparse.ArgumentParser(prog="python -m dcli.demo")
for flag in ("--server", "--id", "--election", "--service", "--address"):
    ap.add_argument(flag, required=True)
ap.add_argument("--registry", default=None)
a = ap.parse_args()
try:
    sys.exit(run(a.server, a.id, a.election, a.registry, a.service, a.address))
except KeyboardInterrupt:
    sys.exit(130)
