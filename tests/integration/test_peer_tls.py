"""`dcli cluster up --tls` and the peer listener's mutual TLS and cluster id, with real node
processes: one TLS cluster made by the CLI for the whole module, and intruders started beside it
(a node with another CA's certificate, a plaintext connection, a node of another cluster), each
aimed at a node of its own so that one node's rate-limited refusal line never hides another's."""
from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess
import sys

import pytest

from dcli.client import CoordClient
from dcli.cluster import LocalCluster
from dcli.cluster.certs import LocalCA
from dcli.cluster.manager import free_ports
from tests.conftest import ROOT, run_cli
from tests.waiting import eventually

WAIT_S = 30.0


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls") / "cluster"
    r = run_cli("cluster", "up", "--nodes", "3", "--base-port", "0", "--tls",
                env={"DCLI_CLUSTER_DIR": str(directory)}, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    cluster = LocalCluster(directory)
    yield cluster
    cluster.down(grace=0)


def cli(cluster: LocalCluster, *args: str, cluster_dir=None, input: bytes | None = None):
    """The real CLI against the cluster with no TLS option: only where the cluster is."""
    env = {"DCLI_CLUSTER_DIR": str(cluster_dir or cluster.directory), "DCLI_SERVER": cluster.servers}
    for name in ("DCLI_CACERT", "DCLI_CERT", "DCLI_KEY"):
        env[name] = ""
    return run_cli(*args, env=env, input=input)


def ok(cluster, *args: str, input: bytes | None = None) -> str:
    r = cli(cluster, *args, input=input)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout.decode()


def log_of(cluster: LocalCluster, node_id: int) -> str:
    return cluster.log_path(node_id).read_text(errors="replace")


def test_cluster_up_tls_serves_every_command_without_tls_flags(tls_cluster, tmp_path):
    status = ok(tls_cluster, "cluster", "status")
    assert "TLS on" in status, status
    rows = [json.loads(line) for line in ok(tls_cluster, "cluster", "status", "-w", "json").splitlines()]
    assert all(r["tls"] and r["state"] == "up" for r in rows), rows
    assert "export DCLI_CACERT=" in ok(tls_cluster, "cluster", "env")

    ok(tls_cluster, "zk", "create", "/over-tls", "secret")
    assert ok(tls_cluster, "zk", "get", "/over-tls").strip() == "secret"
    # ZooKeeper's clients too: each node's ZooKeeper port speaks TLS only, with the cluster's CA
    zk_ports = [n.zk_address for n in tls_cluster.nodes]
    assert f"ZooKeeper protocol (TLS): {','.join(zk_ports)}" in status, status
    from kazoo.client import KazooClient

    files = tls_cluster.tls
    kz = KazooClient(hosts=",".join(zk_ports), timeout=15, use_ssl=True, ca=files["cacert"],
                     certfile=files["cert"], keyfile=files["key"], verify_certs=True)
    kz.start(timeout=30)
    try:
        assert kz.get("/over-tls")[0] == b"secret"
    finally:
        kz.stop()
        kz.close()
    host, port = zk_ports[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as plain:     # no TLS: no answer
        plain.sendall(struct.pack("!iiqiqi", 45, 0, 0, 10_000, 0, 16) + bytes(16) + b"\x00")
        try:
            answer = plain.recv(64)
        except ConnectionResetError:
            answer = b""
        assert answer == b""
    ok(tls_cluster, "kv", "put", "colour", "blue")
    assert ok(tls_cluster, "kv", "get", "colour").splitlines()[0] == "blue"
    ok(tls_cluster, "kafka", "topics", "--create", "--topic", "tls-topic", "--partitions", "1",
       "--replication-factor", "3")
    ok(tls_cluster, "kafka", "console-producer", "--topic", "tls-topic", input=b"one\ntwo\n")
    out = ok(tls_cluster, "kafka", "console-consumer", "--topic", "tls-topic", "--from-beginning",
             "--max-messages", "2", "--timeout-ms", "20000")
    assert out.split() == ["one", "two"], out

    # a client that does not know the cluster (another cluster dir, no --cacert) hears why
    r = cli(tls_cluster, "zk", "get", "/over-tls", cluster_dir=tmp_path / "elsewhere")
    err = r.stderr.decode()
    assert r.returncode != 0 and "speaks TLS" in err and "--cacert" in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_three_nodes_elect_and_replicate_over_mutual_tls(tls_cluster):
    states = eventually(lambda: (s := tls_cluster.status_all()) and all(x.up for x in s)
                        and len({x.leader_id for x in s}) == 1 and s[0].leader_id and s, WAIT_S, "one leader")
    assert {s.role for s in states} == {"leader", "follower"}
    first, *others = tls_cluster.addresses
    with CoordClient(first) as zk:                  # TLS: this process found the files through LocalCluster
        zk.create("/replicated", b"x")
    for address in others:
        with CoordClient(address) as zk:
            eventually(lambda: zk.exists("/replicated"), WAIT_S, f"/replicated on {address}")
    for node_id in (1, 2, 3):
        assert "refused" not in log_of(tls_cluster, node_id)


class Intruder:
    """A node process that claims to be node 1 and dials node `target` (the lower id dials). Not
    waited for: alone with no quorum it would take seconds to say it serves, and it dials at once."""

    def __init__(self, tls_cluster: LocalCluster, tmp_path, target: int, *args: str):
        client, peer = free_ports(2)
        member = tls_cluster.node(target).member
        secret = tls_cluster.directory / "cluster.secret"      # it knows the secret: TLS must stop it
        self.log_path = tmp_path / "intruder.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dcli_server", "--node-id", "1", "--data-dir", str(tmp_path / "intruder"),
                 "--peers", f"1=127.0.0.1:{client}/127.0.0.1:{peer},{target}={member}",
                 "--cluster-secret-file", str(secret), *args],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> "Intruder":
        return self

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def test_a_node_with_another_cas_certificate_cannot_join(tls_cluster, tmp_path):
    ca = LocalCA.load(tls_cluster.directory / "tls")
    rogue = LocalCA.create(tmp_path / "rogue-ca").issue("node-1", server=True, client=True)
    with CoordClient(tls_cluster.servers) as zk:
        zk.create("/before-rogue", b"kept")
    with Intruder(tls_cluster, tmp_path, 2, "--cluster-id", tls_cluster.cluster_id,
                  "--peer-cert-file", str(rogue.cert), "--peer-key-file", str(rogue.key),
                  "--peer-trusted-ca-file", str(ca.cert_path)) as intruder:   # it trusts us; we do not trust it
        line = eventually(lambda: [s for s in log_of(tls_cluster, 2).splitlines() if "peer listener: refused" in s],
                          WAIT_S, "node 2 to refuse the intruder")
        assert "certificate" in line[0], line
        eventually(lambda: "cannot connect" in intruder.log(), WAIT_S, "the intruder to fail")   # never got through
    with CoordClient(tls_cluster.servers) as zk:                # the cluster still serves, its data intact
        assert zk.get("/before-rogue")[0] == b"kept"
        zk.create("/after-rogue", b"")


def test_a_plaintext_connection_to_the_peer_port_is_refused(tls_cluster):
    from dcli_server.listeners.peer_frames import ConnectionClosed, Frame, Kind
    from dcli_server.listeners.peer_stream import open_frame_stream

    host, port = tls_cluster.node(1).peer_address.rsplit(":", 1)

    async def hello() -> bool:
        stream = await open_frame_stream(host, int(port))
        stream.write(Frame(Kind.HELLO, 0, 0, b"\x01" + b"\x00" * 28))
        await stream.drain()
        try:
            await asyncio.wait_for(stream.read(), WAIT_S)
        except ConnectionClosed:
            return True                         # closed on us, nothing answered
        finally:
            stream.abort()
        return False
    assert asyncio.run(hello())
    line = eventually(lambda: [s for s in log_of(tls_cluster, 1).splitlines() if "peer listener: refused" in s],
                      WAIT_S, "node 1 to refuse the plaintext connection")
    assert "does not speak TLS" in line[0], line


def test_a_node_of_another_cluster_is_refused(tls_cluster, tmp_path):
    issued = LocalCA.load(tls_cluster.directory / "tls").issue("stranger", server=True, client=True)
    tls = ["--peer-cert-file", str(issued.cert), "--peer-key-file", str(issued.key),
           "--peer-trusted-ca-file", str(tls_cluster.directory / "tls" / "ca.pem")]
    with Intruder(tls_cluster, tmp_path, 3, "--cluster-id", "another-cluster", *tls):
        line = eventually(lambda: [s for s in log_of(tls_cluster, 3).splitlines() if "peer listener: refused" in s],
                          WAIT_S, "node 3 to refuse the node of another cluster")
        assert "of another cluster" in line[0], line


def test_a_data_dir_refuses_another_cluster_id(tls_cluster):
    node = tls_cluster.node(3)
    r = subprocess.run([sys.executable, "-m", "dcli_server", "--node-id", "3", "--peers", tls_cluster.peers,
                        "--data-dir", str(node.data_dir), "--cluster-id", "another-cluster"],
                       capture_output=True, timeout=60, cwd=ROOT)
    err = r.stderr.decode()
    assert r.returncode != 0 and len(err.strip().splitlines()) == 1, err
    assert f"belongs to cluster {tls_cluster.cluster_id}, not --cluster-id another-cluster" in err
