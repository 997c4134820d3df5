"""Start-up time of one-shot commands: `dcli --help` and `dcli zk get /x` against a local server,
and, where Debian's zookeeper package is installed, `zkCli.sh -server ... get /x` for comparison.

    .venv/bin/python benchmarks/startup.py [--runs 15]

Each figure is the median wall time of whole processes (one uncounted warm-up run first), the
way a user pays it in a terminal or a shell loop. Targets (issue 3): `dcli --help` < 0.15 s,
`dcli zk get` < 0.25 s.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coord import find_zookeeper, start_dcli, start_zookeeper  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DCLI = [str(Path(sys.executable).with_name("dcli"))]
TARGETS = {"dcli --help": 0.15, "dcli zk get": 0.25}
RUN_TIMEOUT_S = 60.0
FLOOR = "import typer, grpc; from dcli.v1 import coord_pb2"


def user_env(extra: dict | None = None) -> dict:
    """The environment of a user's terminal: byte-code caches on (a sandbox may turn them off with
    PYTHONDONTWRITEBYTECODE, which makes every run compile every module again)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra or {})
    return env


def wall(argv: list[str], runs: int, env: dict | None = None) -> tuple[float, int]:
    """Median wall seconds over `runs` (after one warm-up run, which also writes the byte-code
    caches) and the last exit code."""
    env = user_env(env)
    times, code = [], 0
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        # a plain wait() blocks in waitpid; wait(timeout=...) polls with sleeps of up to 50 ms,
        # which would add up to that much to every figure: bound the run with a timer instead
        guard = threading.Timer(RUN_TIMEOUT_S, proc.kill)
        guard.start()
        code = proc.wait()
        guard.cancel()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times), code


def zkcli_script() -> str | None:
    for candidate in ("/usr/share/zookeeper/bin/zkCli.sh", shutil.which("zkCli.sh")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dcli-startup-") as tmp:
        work = Path(tmp)
        server = start_dcli(work)
        try:
            env = {"DCLI_SERVER": server.address}
            subprocess.run(DCLI + ["zk", "create", "/x", "startup"], env=user_env(env), check=True,
                           stdout=subprocess.DEVNULL, timeout=60)
            rows.append(("dcli --help", *wall(DCLI + ["--help"], args.runs)))
            rows.append(("dcli zk get", *wall(DCLI + ["zk", "get", "/x"], args.runs, env)))
            # what no one-shot command can go below: the interpreter, and importing the CLI
            # framework, gRPC and the generated messages (nothing of dcli's own)
            rows.append(("python", *wall([sys.executable, "-c", "pass"], args.runs)))
            rows.append(("import floor", *wall([sys.executable, "-c", FLOOR], args.runs)))
        finally:
            server.stop()
        found, script = find_zookeeper(), zkcli_script()
        if found and script:
            zk = start_zookeeper(found, work)
            try:
                host = zk.address
                subprocess.run([script, "-server", host, "create", "/x", "startup"], timeout=60,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                rows.append(("zkCli.sh get", *wall([script, "-server", host, "get", "/x"], args.runs)))
            finally:
                zk.stop()
    zk_get = next((t for name, t, _ in rows if name == "zkCli.sh get"), None)
    print(f"median wall time over {args.runs} runs (whole process, after one warm-up run)")
    for name, seconds, code in rows:
        line = f"  {name:<14} {seconds:6.3f} s   exit {code}"
        if name in TARGETS:
            line += f"   target < {TARGETS[name]:.2f} s: {'met' if seconds < TARGETS[name] else 'NOT MET'}"
        if name == "dcli zk get" and zk_get:
            line += f"   {seconds / zk_get:.2f}x zkCli.sh"
        print(line)
    print(f"  (import floor = python -c '{FLOOR}')")
    if zk_get is None:
        print("  zkCli.sh: Debian's zookeeper package not installed; recorded figure 0.576 s (reference §7.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
