"""A local cluster of real `dcli server` processes for the key-value store's tests.

Each node is a ServerProcess (tests/conftest.py) on a free 127.0.0.1 port with its own data dir,
started with the same `--peers` list. A node can be SIGKILLed and restarted on the same port and
data (by its own pid only).

    cluster = KVCluster(tmp_path, 3).start()
    with cluster.client() as kv:
        kv.put("k", "v", w=2)
    cluster.kill(2)
    ...
    cluster.stop()
"""
from __future__ import annotations

from pathlib import Path

from dcli.cluster.manager import free_ports
from tests.conftest import ServerProcess
from tests.waiting import eventually

FAST = ("--kv-heartbeat-ms", "200", "--kv-anti-entropy-ms", "600000", "--kv-request-timeout-ms", "1500")


class KVCluster:
    def __init__(self, base: Path, size: int, *extra: str, spare: int = 0):
        """`spare` nodes get ports and ids past `size` but are neither started nor in --peers:
        they join with `dcli kv rebalance --add`."""
        ports = free_ports(2 * (size + spare))          # a client port and a peer port each
        self.base = base
        self.extra = list(extra or FAST)
        self.addresses = {i: f"127.0.0.1:{p}" for i, p in enumerate(ports[:size + spare], 1)}
        peer_ports = dict(enumerate(ports[size + spare:], 1))
        self.peer_addresses = {i: f"127.0.0.1:{p}" for i, p in peer_ports.items()}
        members = {i: f"{a}/{peer_ports[i]}" for i, a in self.addresses.items() if i <= size}
        self.peers = ",".join(f"{i}={a}" for i, a in members.items())
        self.nodes: dict[int, ServerProcess] = {}
        for i, address in self.addresses.items():
            listed = self.peers if i <= size else f"{self.peers},{i}={address}/{peer_ports[i]}"
            self.nodes[i] = ServerProcess(base / f"node-{i}", "--node-id", str(i), "--peers", listed,
                                          *self.extra, port=int(address.rsplit(":", 1)[1]))
        self.size = size

    def start(self) -> KVCluster:
        for i in range(1, self.size + 1):
            self.nodes[i].start()
        for i in range(1, self.size + 1):
            self.wait_all_up(i)
        return self

    def wait_all_up(self, seen_from: int, timeout: float = 60.0) -> None:
        """Until node `seen_from` sees every running node up (its failure detector caught up)."""
        running = {str(i) for i in self.running()}

        def seen() -> bool:
            with self.client(seen_from) as kv:
                return running <= {n.id for n in kv.ring().nodes if n.up}
        eventually(seen, timeout, f"node {seen_from} to see nodes {sorted(running)} up")

    def stop(self) -> None:
        for node in self.nodes.values():
            node.kill()

    def kill(self, i: int) -> None:
        self.nodes[i].kill()

    def restart(self, i: int) -> None:
        self.nodes[i].start()

    def address(self, i: int) -> str:
        return self.addresses[i]

    def member(self, i: int) -> str:
        """Node i's client and peer address, as `dcli kv rebalance --add` takes them."""
        return f"{self.addresses[i]}/{self.peer_addresses[i]}"

    def store(self, i: int):
        """Node i's own sqlite store, opened beside the running server (sqlite's locking keeps the
        two apart): what that replica holds, not a quorum read."""
        from dcli_server.kv.store import KVStore

        return KVStore(self.nodes[i].data_dir / "kv" / "kv.sqlite3")

    def running(self) -> list[int]:
        return [i for i, n in self.nodes.items() if n.proc is not None and n.proc.poll() is None]

    def client(self, *prefer: int, keyspace: str = "default", timeout: float = 15.0):
        from dcli.client.kv import KVClient

        order = list(prefer) + [i for i in self.running() if i not in prefer]
        return KVClient([self.addresses[i] for i in order], keyspace=keyspace, timeout=timeout)

    def logs(self) -> str:
        return "\n".join(f"--- node {i}\n{n.log()}" for i, n in self.nodes.items())

