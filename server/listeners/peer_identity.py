"""Which cluster a node belongs to: its cluster id, given once and remembered by its data dir.

A cluster gets its id when it is made, as Kafka's does (`kafka-storage random-uuid`, kept in
each log dir's meta.properties as cluster.id): `dcli cluster up` makes one and gives it to every
node with `--cluster-id`. A node writes the id into its data dir (the file `cluster-id`) on its
first start and from then on refuses to start with another. Without `--cluster-id` a node uses
the id its data dir remembers; a new node of a cluster derives one from the `--peers` list, as
etcd derives its cluster ID from --initial-cluster (and its token), so that nodes started alike
agree; a node alone makes a random one. A node started with `--join` must be told the id of the
cluster it joins: its peers list is not the one the cluster was made with.

The peer handshake carries a 64-bit digest of the id (`wire_id`), and a node refuses a peer
whose digest is not its own.

    cluster_id = resolve(data_dir, given="q1Xb...", peers=config.peer_addresses, join=False)
    hs = ClusterSecretHandshake(node_id, wire_id(cluster_id), secret)
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Mapping

from dcli.wire.errors import UsageError

FILE = "cluster-id"
_VALID = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}")     # not "-...": an option to a command line


def new_cluster_id() -> str:
    """A fresh id: 22 characters, a random UUID in URL-safe base64 (as kafka-storage random-uuid),
    never starting with '-' (Kafka's Uuid.randomUuid draws again too: it would read as an option)."""
    for _ in range(64):                 # each draw starts with '-' with chance 1/64
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text
    return "c" + text[1:]


def check(cluster_id: str, where: str = "--cluster-id") -> str:
    if not _VALID.fullmatch(cluster_id):
        raise UsageError(f"invalid {where} '{cluster_id}': 1 to 64 letters, digits, '_', '.' or '-' "
                         "(not '-' first)")
    return cluster_id


def wire_id(cluster_id: str) -> int:
    """The id as the handshake carries it: the first 8 bytes of its SHA-256, never 0."""
    return int.from_bytes(hashlib.sha256(cluster_id.encode()).digest()[:8], "big") or 1


def derived(peers: Mapping[int, str]) -> str:
    """The id nodes started with the same --peers list (id -> peer address) agree on, untold."""
    members = ",".join(f"{i}={peers[i]}" for i in sorted(peers))
    return "peers-" + hashlib.sha256(members.encode()).hexdigest()[:20]


def stored(data_dir: Path) -> str | None:
    """The id the data dir remembers, or None."""
    try:
        text = (data_dir / FILE).read_text().strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {data_dir / FILE}: {getattr(e, 'strerror', None) or e}") from None
    return check(text, str(data_dir / FILE))


def resolve(data_dir: Path, given: str | None, peers: Mapping[int, str], join: bool = False) -> str:
    """This node's cluster id, written into the data dir when it has none yet; UsageError (one
    line) when the data dir belongs to another cluster or a joining node was not told the id."""
    remembered = stored(data_dir)
    if remembered is not None:
        if given and given != remembered:
            raise UsageError(f"the data dir {data_dir} belongs to cluster {remembered}, not --cluster-id "
                             f"{given}: a node cannot move to another cluster (start it with an empty "
                             f"--data-dir to make it a new node)")
        return remembered
    if given:
        cluster_id = given
    elif join:
        raise UsageError(f"--join needs --cluster-id: the id of the cluster it joins (the file {FILE} in "
                         "the data dir of any of its nodes)")
    elif peers:
        cluster_id = derived(peers)
    else:
        cluster_id = new_cluster_id()
    _write(data_dir, cluster_id)
    return cluster_id


def _write(data_dir: Path, cluster_id: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / FILE
    tmp = path.with_name(FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, (cluster_id + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
