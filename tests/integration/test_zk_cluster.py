"""ZooKeeper's protocol on a 3-node cluster: every node has a ZooKeeper port (`cluster up` gives
them out), a kazoo client with the ensemble's connect string works as against an ensemble, and
a session moves from one node's ZooKeeper port to another's with its ephemerals."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kazoo.client import KazooClient

from dcli.client import CoordClient
from tests.waiting import eventually


def _kazoo(hosts: str, **kwargs) -> KazooClient:
    client = KazooClient(hosts=hosts, timeout=15, **kwargs)
    client.start(timeout=30)
    return client


def test_every_node_serves_zookeepers_protocol_and_a_session_moves_between_them(local_cluster):
    cluster = local_cluster(3)
    zk_addresses = [n.zk_address for n in cluster.manager.nodes]
    assert all(zk_addresses) and len(set(zk_addresses)) == 3
    status = subprocess.run([str(Path(sys.executable).parent / "dcli"), "cluster", "status", "--dir",
                             str(cluster.directory)], capture_output=True, text=True, timeout=60)
    assert f"ZooKeeper protocol: {','.join(zk_addresses)}\n" in status.stdout, status.stdout + status.stderr

    ensemble = _kazoo(",".join(zk_addresses))
    try:
        ensemble.ensure_path("/zkc")
        ensemble.create("/zkc/data", b"through the ensemble")
    finally:
        ensemble.stop()
        ensemble.close()

    first = _kazoo(zk_addresses[0])
    try:
        first.create("/zkc/eph", b"mine", ephemeral=True)
        session_id, password = first.client_id
        with CoordClient(cluster.address(3)) as grpc_client:
            grpc_client.sync("/zkc")
            assert grpc_client.get("/zkc/data")[0] == b"through the ensemble"
            assert grpc_client.exists("/zkc/eph").ephemeralOwner == session_id
        moved = _kazoo(zk_addresses[1], client_id=(session_id, password))
        try:
            assert moved.client_id[0] == session_id
            assert moved.get("/zkc/eph")[0] == b"mine"
            moved.set("/zkc/data", b"written after the move")
        finally:
            moved.stop()                # closes the session: its ephemeral goes, on every node
            moved.close()
        with CoordClient(cluster.address(3)) as grpc_client:
            grpc_client.sync("/zkc")
            assert grpc_client.exists("/zkc/eph") is None
            assert grpc_client.get("/zkc/data")[0] == b"written after the move"
    finally:
        first.stop()
        first.close()


def test_a_kazoo_session_survives_the_sigkill_of_its_node(local_cluster):
    """kazoo with the ensemble's connect string: its node is SIGKILLed; it reconnects to another
    node within its session timeout, keeps its session and its ephemeral, and writes on."""
    cluster = local_cluster(3)
    nodes = cluster.manager.nodes
    client = _kazoo(",".join(n.zk_address for n in nodes))
    try:
        client.create("/survivor", b"", ephemeral=True)
        session_id = client.client_id[0]
        host, port = client._connection._socket.getpeername()[:2]
        victim = next(n for n in nodes if n.zk_address == f"{host}:{port}")
        cluster.kill(victim.id)
        eventually(lambda: client.connected and client.exists("/survivor") is not None, 60,
                   "kazoo back on another node with its ephemeral", errors=(Exception,))
        assert client.client_id[0] == session_id
        client.set("/survivor", b"after the kill")
        other = next(n for n in nodes if n.id != victim.id)
        with CoordClient(cluster.address(other.id)) as grpc_client:
            grpc_client.sync("/")
            data, stat = grpc_client.get("/survivor")
            assert (data, stat.ephemeralOwner) == (b"after the kill", session_id)
    finally:
        client.stop()
        client.close()
