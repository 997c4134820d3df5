"""kazoo's own test suite, from its sdist, against a dcli server: `make kazoo-suite`.

Steps, each cached under `.cache/kazoo-suite/` (git-ignored):
1. the sdist of the kazoo version installed here (`pip download kazoo==V --no-binary :all:`),
   unpacked; its tests run against its own `kazoo/` package;
2. a virtualenv with what kazoo's harness and tests import (pytest, pytest-timeout, pyOpenSSL,
   pyjks, objgraph), apart from the project's own `.venv`;
3. a `java` on PATH that is `kazoo_java.py`: kazoo's harness believes it starts ZooKeeper 3.8 and
   gets a dcli server on the same ports, stopped and restarted by the harness itself (so the tests
   that stop and restart "ZooKeeper" do so), one server (`ZOOKEEPER_CLUSTER_SIZE=1`);
4. pytest over `kazoo/tests` with a per-test timeout and a bound on the whole run; the results come
   back as JUnit XML and are printed by `kazoo_report`: every failure with its first line, the
   skips, the out-of-scope tests by reason, and the counts.

Exit status: 0 when every test in scope passed, 1 when one failed, 2 when the suite could not run.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import random
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from tests.conformance import kazoo_report

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "kazoo-suite"
DEFAULT_VERSION = "2.11.0"          # when kazoo is not installed in this interpreter
HARNESS_DEPS = ["pytest>=8", "pytest-timeout>=2.1", "pyOpenSSL>=23,<24.3", "pyjks>=20", "objgraph>=3.5"]
TEST_TIMEOUT_S = 60                 # one test, setUp and tearDown included (pytest-timeout)
RUN_TIMEOUT_S = 900                 # the whole run
ZK_VERSION = "3.8.4"                # what the harness is told it runs (>= 3.5: super digest, 4lw), as
                                    # dcli's `envi` says (test_build compares the two)
BUILD_TESTS = "kazoo/tests/test_build.py"


def kazoo_version() -> str:
    try:
        return importlib.metadata.version("kazoo")
    except importlib.metadata.PackageNotFoundError:
        return DEFAULT_VERSION


def _run(cmd: list[str], what: str, **kw) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {kazoo_report.first_line(proc.stderr[-2000:])}")


def sdist(version: str) -> Path:
    """The unpacked sdist of kazoo `version` (downloaded once)."""
    src = CACHE / f"kazoo-{version}"
    if (src / "kazoo" / "tests").is_dir():
        return src
    dist = CACHE / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    archive = dist / f"kazoo-{version}.tar.gz"
    if not archive.exists():
        _run([sys.executable, "-m", "pip", "download", "-q", f"kazoo=={version}", "--no-binary", ":all:",
              "--no-deps", "-d", str(dist)], f"pip download kazoo=={version}", timeout=300)
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    if not (src / "kazoo" / "tests").is_dir():
        raise RuntimeError(f"{archive.name} has no kazoo/tests")
    return src


def harness_python() -> Path:
    """The suite's own virtualenv, with the harness's dependencies (made once)."""
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    stamp = venv / ".deps"
    if stamp.exists() and stamp.read_text() == "\n".join(HARNESS_DEPS):
        return python
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], "python -m venv", timeout=300)
    _run([str(python), "-m", "pip", "install", "-q", *HARNESS_DEPS], "pip install " + " ".join(HARNESS_DEPS),
         timeout=600)
    stamp.write_text("\n".join(HARNESS_DEPS))
    return python


def fake_java(python: Path) -> Path:
    """A directory whose `java` runs kazoo_java.py under the suite's interpreter."""
    bin_dir = CACHE / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    java = bin_dir / "java"
    java.write_text(f'#!/bin/sh\nexec "{python}" "{ROOT / "tests" / "conformance" / "kazoo_java.py"}" "$@"\n')
    java.chmod(0o755)
    return bin_dir


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_offset(tries: int = 200) -> int:
    """A base port p with p (clientPort) and p+4 (secureClientPort) free; the harness uses p..p+4."""
    rng = random.Random()
    for _ in range(tries):
        p = rng.randrange(21000, 39000, 10)
        if all(_free(p + i) for i in range(5)):
            return p
    raise RuntimeError("no free port range for the harness")


def debian_zookeeper() -> tuple[str, str]:
    """(classpath, version) of Debian's ZooKeeper, for a baseline run; RuntimeError when missing."""
    from benchmarks.bench_servers import find_zookeeper

    found = find_zookeeper()
    if found is None:
        raise RuntimeError("--against-zookeeper: Debian's zookeeper package or java is missing")
    _, conf, jar = found
    # the harness asks for the Netty connection factory; Debian's jar lists only part of Netty
    netty = [jar.parent / f"netty-{n}.jar" for n in ("codec", "resolver", "transport-native-unix-common")]
    q = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "zookeeper"], capture_output=True, text=True)
    version = q.stdout.split("-")[0] if q.returncode == 0 and q.stdout else "3.8.0"
    return os.pathsep.join(map(str, [conf, jar, *(n for n in netty if n.exists())])), version


def run_pytest(src: Path, python: Path, bin_dir: Path | None, junit: Path, log: Path, select: list[str],
               ci: bool = False, deadline: float = RUN_TIMEOUT_S, zookeeper: tuple[str, str] | None = None) -> int:
    """pytest over `select` in the sdist; `ci` sets CI as kazoo's own CI does (test_build runs only then,
    and the setUps then take the server's version from ZOOKEEPER_VERSION instead of asking).
    `zookeeper` (classpath, version) runs the harness's real java on a real ZooKeeper instead."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ZOOKEEPER_", "KRB5_")) and k not in ("CI", "PYTHONPATH")}
    if ci:
        env["CI"] = "true"
    env.update(ZOOKEEPER_CLUSTER_SIZE="1", ZOOKEEPER_PORT_OFFSET=str(port_offset()),
               DCLI_PYTHON=sys.executable, PYTHONDONTWRITEBYTECODE="1")
    if zookeeper:
        env.update(ZOOKEEPER_CLASSPATH=zookeeper[0], ZOOKEEPER_VERSION=zookeeper[1])
    else:
        env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", ZOOKEEPER_VERSION=ZK_VERSION,
                   ZOOKEEPER_CLASSPATH="dcli")    # not used by the stand-in java; the harness needs one
    cmd = [str(python), "-m", "pytest", *select, "-p", "no:cacheprovider",
           "-o", "addopts=", "-o", "log_cli=false", "-o", f"timeout={TEST_TIMEOUT_S}",
           "-o", "junit_family=xunit1", f"--junitxml={junit}", "-q", "-rN"]
    with open(log, "a") as out:
        proc = subprocess.Popen(cmd, cwd=src, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            return proc.wait(timeout=max(deadline, 1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)      # pytest and the servers it started
            proc.wait()
            raise RuntimeError(f"the run took over {RUN_TIMEOUT_S} s; killed (log: {log})") from None
        except BaseException:                        # interrupted: take pytest's group down too
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise


def run_suite(src: Path, python: Path, bin_dir: Path | None, log: Path, select: list[str],
              zookeeper: tuple[str, str] | None = None) -> list:
    """The whole suite (or `select`), test_build apart with CI set; the results of every run."""
    log.write_text("")
    started = time.monotonic()
    runs = [(select, False)] if select else [
        (["kazoo/tests", f"--ignore={BUILD_TESTS}"], False), ([BUILD_TESTS], True)]
    results = []
    for i, (args, ci) in enumerate(runs):
        junit = CACHE / f"results-{i}.xml"
        junit.unlink(missing_ok=True)
        run_pytest(src, python, bin_dir, junit, log, args, ci=ci,
                   deadline=RUN_TIMEOUT_S - (time.monotonic() - started), zookeeper=zookeeper)
        if not junit.exists():
            raise RuntimeError(f"pytest wrote no results; see {log}")
        results += kazoo_report.read_junit(str(junit))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kazoo_suite", description=__doc__.splitlines()[0])
    ap.add_argument("--kazoo-version", default=kazoo_version(), help="default: the installed kazoo's")
    ap.add_argument("--markdown", action="store_true", help="also print the failures as a Markdown table")
    ap.add_argument("--against-zookeeper", action="store_true",
                    help="baseline: the same suite against Debian's ZooKeeper (one server) instead of dcli")
    ap.add_argument("select", nargs="*", help="test ids or files under the sdist (default: kazoo/tests)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)     # SIGTERM ends the run as Ctrl-C does
    t0 = time.monotonic()
    try:
        src = sdist(args.kazoo_version)
        python = harness_python()
        zookeeper = debian_zookeeper() if args.against_zookeeper else None
        bin_dir = None if zookeeper else fake_java(python)
        log = CACHE / "pytest.log"
        server = f"ZooKeeper {zookeeper[1]}" if zookeeper else "dcli"
        print(f"kazoo {args.kazoo_version} test suite against {server} (threading handler, one server); "
              f"log: {log.relative_to(ROOT)}", flush=True)
        results = run_suite(src, python, bin_dir, log, args.select, zookeeper)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"kazoo_suite: {e}", file=sys.stderr)
        return 2
    print(kazoo_report.text_report(results))
    if args.markdown:
        print(kazoo_report.markdown_table(results))
    print(f"kazoo suite: {time.monotonic() - t0:.0f} s")
    return 1 if kazoo_report.counts(results)["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
