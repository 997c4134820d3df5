"""The servers the benchmarks start: a dcli server and Debian's ZooKeeper, each on a free port of
127.0.0.1 with its data in the benchmark's temporary directory, each stopped by its own pid
(SIGTERM, then SIGKILL after 15 s).

    server = start_dcli(workdir, zk_listen="127.0.0.1:0")   # .address (gRPC), .zk_address, .pid
    found = find_zookeeper()                                 # None unless Debian's package is installed
    zk = start_zookeeper(found, workdir) if found else None  # .address once it serves requests
    ...
    server.stop()

Used by coord.py, cluster.py and startup.py (through coord's names, which are these).
"""
from __future__ import annotations

import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0


class BenchError(Exception):
    pass


class Server:
    """A server process of ours: started here, stopped by its pid (SIGTERM, then SIGKILL)."""

    def __init__(self, name, argv, log_path, cwd, stdout=None):
        self.name, self.log_path = name, log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=stdout or self._log, stderr=self._log)
        self.pid = self.proc.pid
        self.address = self.banner = self.zk_address = ""

    def tail(self):
        try:
            return Path(self.log_path).read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=15)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


def start_dcli(workdir, name="dcli", extra=(), zk_listen="none"):
    """A dcli server on a free loopback port; `zk_listen` is its --zk-listen (`127.0.0.1:0` for
    ZooKeeper's protocol on a free port, `none` for no such listener)."""
    server = Server(name, [sys.executable, "-m", "dcli_server", "--listen", "127.0.0.1:0", "--zk-listen", zk_listen,
                           "--data-dir", str(workdir / (name + "-data")), *extra],
                    workdir / (name + ".log"), ROOT, stdout=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(server.proc.stdout, selectors.EVENT_READ)
    line = ""
    if sel.select(START_TIMEOUT_S):
        line = server.proc.stdout.readline().decode(errors="replace").strip()
    sel.close()
    if not line.startswith("dcli server listening on "):
        server.stop()
        raise BenchError("dcli server did not start: %r\n%s" % (line, server.tail()))
    # "dcli server listening on A, zookeeper on Z, data in D (...)"; no ", zookeeper on" without one
    server.address, server.banner = line.split()[4].rstrip(","), line
    if ", zookeeper on " in line:
        server.zk_address = line.split(", zookeeper on ", 1)[1].split(",", 1)[0].strip()
    return server


def find_zookeeper():
    """(java, conf dir, zookeeper.jar) of Debian's package, or None."""
    java = shutil.which("java")
    if java is None or not (Path("/usr/share/zookeeper").is_dir() or _dpkg_files("zookeeper")):
        return None
    jars = [Path("/usr/share/java/zookeeper.jar")]
    jars += [Path(f) for pkg in ("libzookeeper-java", "zookeeper") for f in _dpkg_files(pkg)
             if f.endswith("/zookeeper.jar")]
    jar = next((j for j in jars if j.is_file()), None)
    conf = next((c for c in (Path("/etc/zookeeper/conf"), Path("/usr/share/zookeeper/conf")) if c.is_dir()), None)
    return (java, conf, jar) if jar and conf else None


def _dpkg_files(pkg):
    try:
        r = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return r.stdout.split() if r.returncode == 0 else []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(port, word, timeout=1.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            b = s.recv(4096)
            if not b:
                return b"".join(chunks)
            chunks.append(b)


def start_zookeeper(found, workdir, extra_config="", jvm_args=()):
    """A standalone ZooKeeper on a free port of 127.0.0.1; `extra_config` lines go into its
    zoo.cfg, `jvm_args` (-Dname=value) before its main class. BenchError if it does not serve."""
    java, conf, jar = found
    zdir = workdir / "zookeeper"
    (zdir / "data").mkdir(parents=True)
    port = free_port()
    (zdir / "zoo.cfg").write_text(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\n"
        "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n"
        "maxSessionTimeout=40000\n%s" % (zdir / "data", port, extra_config))
    server = Server("zookeeper", [java, *jvm_args, "-cp", "%s:%s" % (conf, jar),
                                  "org.apache.zookeeper.server.quorum.QuorumPeerMain", "zoo.cfg"],
                    workdir / "zookeeper.log", zdir)
    end = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < end:
        try:
            # `imok` comes as soon as the port is open; `srvr` names a Mode once it serves requests
            if four_letter(port, b"ruok") == b"imok" and b"Mode:" in four_letter(port, b"srvr"):
                server.address = "127.0.0.1:%d" % port
                return server
        except OSError:
            pass
        try:            # doubles as the pause between polls, and notices a JVM that died
            server.proc.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
    server.stop()
    raise BenchError("ZooKeeper did not answer ruok within %.0f s\n%s" % (START_TIMEOUT_S, server.tail()))


def zookeeper_version(port):
    try:
        for line in four_letter(port, b"srvr").decode(errors="replace").splitlines():
            if line.startswith("Zookeeper version:"):
                return line.split(":", 1)[1].split(",")[0].strip().split("-")[0]
    except OSError:
        pass
    return "?"
