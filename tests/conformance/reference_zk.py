"""The real ZooKeeper the conformance suite compares dcli with: Debian's `zookeeper` package (3.8),
started with java on a free 127.0.0.1 port and stopped by its pid.

Finding the package, the process wrapper and the four-letter-word probe are benchmarks/coord.py's
(imported, unchanged); what differs is the configuration: `extendedTypesEnabled=true` so TTL
nodes exist, every four-letter word allowed, and the container/TTL reaper run every 200 ms (as the
dcli side's `--container-check-interval-ms 200`) instead of once a minute.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from benchmarks.bench_servers import Server, find_zookeeper, four_letter, free_port, zookeeper_version

START_TIMEOUT_S = 60.0
ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
REAPER_INTERVAL_MS = 200


def missing() -> str:
    """Why the reference cannot run here ('' when it can)."""
    if find_zookeeper() is None:
        return "ZooKeeper (Debian's zookeeper package) or java is missing"
    return ""


def start(workdir: Path) -> Server:
    """A standalone ZooKeeper serving on a free port; raises RuntimeError if it does not come up."""
    java, conf, jar = find_zookeeper()
    zdir = workdir / "zookeeper"
    (zdir / "data").mkdir(parents=True)
    port = free_port()
    (zdir / "zoo.cfg").write_text(
        f"tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={zdir / 'data'}\nclientPort={port}\n"
        "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n"
        "maxSessionTimeout=40000\nextendedTypesEnabled=true\n")
    server = Server("zookeeper", [java, f"-Dznode.container.checkIntervalMs={REAPER_INTERVAL_MS}",
                                  "-cp", f"{conf}:{jar}",
                                  "org.apache.zookeeper.server.quorum.QuorumPeerMain", "zoo.cfg"],
                    workdir / "zookeeper.log", zdir)
    end = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < end:
        try:
            # `imok` comes as soon as the port is open; `srvr` names a Mode once it serves requests
            if four_letter(port, b"ruok") == b"imok" and b"Mode:" in four_letter(port, b"srvr"):
                server.address = f"127.0.0.1:{port}"
                return server
        except OSError:
            pass
        try:            # doubles as the pause between polls, and notices a JVM that died
            server.proc.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
    server.stop()
    raise RuntimeError(f"ZooKeeper did not answer ruok within {START_TIMEOUT_S:.0f} s\n{server.tail()}")


def version(server: Server) -> str:
    """The running ZooKeeper's version, as `srvr` says it ('3.8.0')."""
    return zookeeper_version(int(server.address.rsplit(":", 1)[1]))
