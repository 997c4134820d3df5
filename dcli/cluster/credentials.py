"""What a local cluster is made with besides its nodes: its id, and with --tls its certificates.

The id is made once, when the cluster is (as Kafka's `kafka-storage random-uuid`), recorded in
cluster.json and given to every node with --cluster-id. With --tls the cluster's directory
gets a CA of its own (certs.LocalCA) in DIR/tls, a certificate for the clients, and one for
each node when it first starts, which serves its client port and its peer port both ways.

    rec.cluster_id = new_cluster_id()
    rec.tls = make_ca(directory / "tls")          # {"cacert": ..., "cert": ..., "key": ...}
    argv += node_tls_args(directory / "tls", rec, node)
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from dcli.cluster.state import ClusterRecord, Node
from dcli.wire import errors


def new_cluster_id() -> str:
    from dcli_server.listeners.peer_identity import new_cluster_id as new

    return new()


def remembered_id(rec: ClusterRecord) -> str | None:
    """A cluster recorded before clusters had ids: the id its first nodes' data dirs remember
    (a node joining it must be told), else None (the nodes derive it from --peers)."""
    from dcli_server.listeners.peer_identity import stored

    for n in rec.nodes:
        if not n.join:
            with contextlib.suppress(errors.UsageError):
                found = stored(n.data_dir)
                if found:
                    return found
    return None


def make_ca(directory: Path) -> dict[str, str]:
    """A new CA in `directory` and the clients' certificate: the files a client connects with."""
    from dcli.cluster.certs import LocalCA

    ca = LocalCA.create(directory)
    client = ca.issue("client", client=True)
    return {"cacert": str(ca.cert_path), "cert": str(client.cert), "key": str(client.key)}


def node_tls_args(directory: Path, rec: ClusterRecord, node: Node) -> list[str]:
    """A node's TLS options, its certificate made on first use: TLS for its clients, who must
    show a certificate of the cluster's CA, and mutual TLS with the same files for its peers
    (the server's --peer-* options default to these)."""
    if not rec.tls:
        return []
    cert, key = directory / f"node-{node.id}.pem", directory / f"node-{node.id}-key.pem"
    if not (cert.exists() and key.exists()):
        from dcli.cluster.certs import LocalCA

        LocalCA.load(directory).issue(f"node-{node.id}", server=True, client=True)
    return ["--cert-file", str(cert), "--key-file", str(key), "--trusted-ca-file", rec.tls["cacert"],
            "--client-cert-auth"]
