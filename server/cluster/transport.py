"""What the replica needs of the network: Raft's one-way messages to and from the other nodes.

The listener layer implements it (server/listeners/peer.py: frames on the peer port); a node
alone uses `NoPeers`. Sending never blocks and may drop: Raft resends what matters (it is built
for lossy links). What arrives is handed to `Replica.step` by whoever implements it.

    transport.add_peer(2, "127.0.0.1:8182")      # the peer address
    transport.send(2, encoded_message)
    transport.reachable(2)                       # a connection to 2 is up
"""
from __future__ import annotations

from typing import Protocol


class RaftTransport(Protocol):
    def add_peer(self, node_id: int, peer_address: str) -> None: ...

    def remove_peer(self, node_id: int) -> None: ...

    def send(self, to: int, message: bytes) -> None: ...

    def reachable(self, node_id: int) -> bool: ...


class NoPeers:
    """The transport of a node alone: nobody to reach."""

    def add_peer(self, node_id: int, peer_address: str) -> None:
        pass

    def remove_peer(self, node_id: int) -> None:
        pass

    def send(self, to: int, message: bytes) -> None:
        pass

    def reachable(self, node_id: int) -> bool:
        return False
