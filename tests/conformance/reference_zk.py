"""The real ZooKeeper the conformance suite compares dcli with: Debian's `zookeeper` package (3.8),
started with java on a free 127.0.0.1 port and stopped by its pid.

Finding the package and starting it are benchmarks/bench_servers.py's (imported); what differs is
the configuration: `extendedTypesEnabled=true` so TTL
nodes exist, every four-letter word allowed, and the container/TTL reaper run every 200 ms (as the
dcli side's `--container-check-interval-ms 200`) instead of once a minute.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks.bench_servers import BenchError, Server, find_zookeeper, start_zookeeper, zookeeper_version

ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
REAPER_INTERVAL_MS = 200


def missing() -> str:
    """Why the reference cannot run here ('' when it can)."""
    if find_zookeeper() is None:
        return "ZooKeeper (Debian's zookeeper package) or java is missing"
    return ""


def start(workdir: Path) -> Server:
    """A standalone ZooKeeper serving on a free port; raises RuntimeError if it does not come up."""
    try:
        return start_zookeeper(find_zookeeper(), workdir, extra_config="extendedTypesEnabled=true\n",
                               jvm_args=(f"-Dznode.container.checkIntervalMs={REAPER_INTERVAL_MS}",))
    except BenchError as e:
        raise RuntimeError(str(e)) from None


def version(server: Server) -> str:
    """The running ZooKeeper's version, as `srvr` says it ('3.8.0')."""
    return zookeeper_version(int(server.address.rsplit(":", 1)[1]))
