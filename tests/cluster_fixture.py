"""A pytest fixture for multi-node tests: real node processes on free 127.0.0.1 ports.

    def test_a_node_goes_down(local_cluster):
        c = local_cluster(3)                            # 3 nodes, started and serving
        with CoordClient(c.servers) as zk:              # "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
            ...
        c.kill(2)                                       # SIGKILL; also stop, start, restart, pause, resume
        c.wait_for(lambda: not c.status(2).up)
        c.restart(1, kill=True)

The key-value store's tests use the same clusters, with KV_SERVER_ARGS for short heartbeats:

    c = local_cluster(3, server_args=KV_SERVER_ARGS)
    with c.kv(2) as kv:                                 # a KVClient that asks node 2 first
        kv.put("k", "v", w=2)
    c.wait_kv_up(1)                                     # node 1 sees every running node up
    new = c.add_node()                                  # --join + AddMember; then onto the ring:
    with c.kv(1) as kv:
        list(kv.rebalance(add={str(new): c.member(new)}))

Built on dcli.cluster.LocalCluster, in the test's tmp_path. At teardown every process the fixture
started is killed by its pid (a test that fails half-way leaves nothing behind), and when a test
fails, each node's log is added to its report.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

from dcli.cluster import LocalCluster, NodeState
from tests.waiting import eventually
from dcli.wire import errors

# As the single-server fixtures: sweeps and new groups without waiting, for short tests.
DEFAULT_SERVER_ARGS = ("--container-check-interval-ms", "200", "--group-initial-rebalance-delay-ms", "0", "--log-level", "info")
LOG_TAIL_CHARS = 5000
# the KV store's failure detector and requests made quick; anti-entropy only when a test asks
KV_ARGS = ("--kv-heartbeat-ms", "200", "--kv-anti-entropy-ms", "600000", "--kv-request-timeout-ms", "1500")
KV_SERVER_ARGS = (*DEFAULT_SERVER_ARGS, *KV_ARGS)


class Cluster:
    """A running local cluster, by node id (1..n)."""

    def __init__(self, manager: LocalCluster):
        self.manager = manager

    @property
    def directory(self) -> Path:
        return self.manager.directory

    @property
    def ids(self) -> list[int]:
        return [n.id for n in self.manager.nodes]

    @property
    def addresses(self) -> list[str]:
        return self.manager.addresses

    @property
    def servers(self) -> str:
        """For --server / DCLI_SERVER / CoordClient: every node's address, comma-separated."""
        return self.manager.servers

    def address(self, node_id: int) -> str:
        return self.manager.node(node_id).address

    def pid(self, node_id: int) -> int | None:
        return self.manager.node(node_id).pid

    def kill(self, node_id: int) -> None:
        self.manager.kill(node_id)

    def stop(self, node_id: int) -> None:
        self.manager.stop(node_id)

    def start(self, node_id: int) -> None:
        self.manager.start(node_id)

    def restart(self, node_id: int, kill: bool = False) -> None:
        self.manager.restart(node_id, kill=kill)

    def pause(self, node_id: int) -> None:
        self.manager.pause(node_id)

    def resume(self, node_id: int) -> None:
        self.manager.resume(node_id)

    def add_node(self) -> int:
        """Start one more node with --join and add it to the coordination cluster; its id."""
        return self.manager.add_node().id

    def remove_node(self, node_id: int) -> None:
        self.manager.remove_node(node_id)

    def running(self) -> list[int]:
        """The ids of the nodes whose process runs (paused ones too)."""
        return [i for i in self.ids if self.manager.process_state(i) != "down"]

    def member(self, node_id: int) -> str:
        """The node's client and peer address, as `dcli kv rebalance --add ID=...` takes them."""
        return self.manager.node(node_id).member

    # -- the key-value store ------------------------------------------------------------------

    def kv(self, *prefer: int, keyspace: str = "default", timeout: float = 15.0):
        """A KVClient on the running nodes, asking `prefer` first in that order."""
        from dcli.client.kv import KVClient

        order = list(prefer) + [i for i in self.running() if i not in prefer]
        return KVClient([self.address(i) for i in order], keyspace=keyspace, timeout=timeout)

    def wait_kv_up(self, seen_from: int, timeout: float = 60.0) -> None:
        """Until node `seen_from`'s KV failure detector sees every running node up."""
        running = {str(i) for i in self.running()}

        def seen() -> bool:
            with self.kv(seen_from) as kv:
                return running <= {n.id for n in kv.ring().nodes if n.up}
        eventually(seen, timeout, f"node {seen_from} to see nodes {sorted(running)} up")

    def kv_store(self, node_id: int):
        """Node i's own sqlite store, opened beside the running server (sqlite's locking keeps
        the two apart): what that replica holds, not a quorum read."""
        from dcli_server.kv.store import KVStore

        return KVStore(self.manager.node(node_id).data_dir / "kv" / "kv.sqlite3")

    def status(self, node_id: int, timeout: float = 1.0) -> NodeState:
        return self.manager.status(node_id, timeout)

    def status_all(self, timeout: float = 1.0) -> list[NodeState]:
        return self.manager.status_all(timeout)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05,
                 message: str = "") -> Any:
        """predicate's first truthy value, asked until timeout (tests/waiting.py)."""
        return eventually(predicate, timeout, message, interval, errors=())

    def logs(self) -> str:
        out = []
        for log in sorted(self.directory.glob("node-*.log")):
            text = log.read_text(errors="replace")
            out.append(f"--- {log}\n{text[-LOG_TAIL_CHARS:]}")
        return "\n".join(out)

    def close(self) -> None:
        """Kill what is recorded as running, and every process this fixture started."""
        try:
            self.manager.down(grace=0)
        except errors.NoClusterError:       # it never came up
            pass
        finally:
            self.manager.close()


class ClusterFactory:
    """`local_cluster(nodes=3, server_args=...)`: a started Cluster in its own directory."""

    def __init__(self, base: Path):
        self.base = base
        self.clusters: list[Cluster] = []

    def __call__(self, nodes: int = 3, server_args: Sequence[str] = DEFAULT_SERVER_ARGS,
                 start_timeout: float = 30.0) -> Cluster:
        manager = LocalCluster(self.base / f"cluster-{len(self.clusters) + 1}", start_timeout=start_timeout,
                               stop_grace=10.0)
        cluster = Cluster(manager)
        self.clusters.append(cluster)
        manager.up(nodes=nodes, base_port=0, extra_args=list(server_args))
        return cluster

    def close(self) -> None:
        for c in self.clusters:
            c.close()


@pytest.fixture
def local_cluster(tmp_path):
    factory = ClusterFactory(tmp_path)
    yield factory
    factory.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        factory = getattr(item, "funcargs", {}).get("local_cluster")
        if isinstance(factory, ClusterFactory):
            for i, c in enumerate(factory.clusters, start=1):
                rep.sections.append((f"local_cluster {i} node logs", c.logs()))
