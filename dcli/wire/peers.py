"""The `--peers` list of a cluster: every node's id, client address and peer address.

    1=127.0.0.1:7181/127.0.0.1:8181,2=127.0.0.1:7182/8182,3=127.0.0.1:7183

The same list is given to every node; a node finds its own addresses in it by `--node-id`.
Clients talk to the client address; the other nodes to the peer address, a port of its own.
The peer address may be a port alone (same host as the client address) or left out: then it is
the client address's port + 1000 (7181 -> 8181).

    >>> parse_peers("1=127.0.0.1:7181, 2=127.0.0.1:7182/9000")
    {1: Member(client='127.0.0.1:7181', peer='127.0.0.1:8181'), 2: Member(client='127.0.0.1:7182', peer='127.0.0.1:9000')}
    >>> format_peers({2: Member("h:2", "h:1002"), 1: Member("h:1", "h:1001")})
    '1=h:1/h:1001,2=h:2/h:1002'
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

from dcli.wire.addresses import join_host_port, split_host_port
from dcli.wire.errors import UsageError

MAX_NODE_ID = 255
PEER_PORT_OFFSET = 1000         # a peer address left out: the client port + this


class Member(NamedTuple):
    client: str                 # host:port of the client listener
    peer: str                   # host:port of the peer listener

    def __str__(self) -> str:
        return f"{self.client}/{self.peer}"


def parse_address(address: str, what: str = "address") -> str:
    """A peer's host:port as given, once checked (port 1-65535)."""
    split_host_port(address, what)
    return address


def parse_node_id(text: str | int, what: str = "node id") -> int:
    try:
        node_id = int(text)
    except (TypeError, ValueError):
        raise UsageError(f"invalid {what} '{text}': expected a number from 1 to {MAX_NODE_ID}") from None
    if not 1 <= node_id <= MAX_NODE_ID:
        raise UsageError(f"invalid {what} '{text}': expected a number from 1 to {MAX_NODE_ID}")
    return node_id


def parse_member(text: str, what: str = "member address") -> Member:
    """`CLIENT[/PEER]`: a node's client address and its peer address (HOST:PORT, or a PORT on
    the client's host; left out, the client port + PEER_PORT_OFFSET)."""
    client, sep, peer = text.strip().partition("/")
    host, port = split_host_port(client, what)
    peer = peer.strip()
    if not sep:
        if port + PEER_PORT_OFFSET > 65535:
            raise UsageError(f"invalid {what} '{text}': give the peer address too (CLIENT/PEER), "
                             f"port {port} + {PEER_PORT_OFFSET} is not a port")
        peer = join_host_port(host, port + PEER_PORT_OFFSET)
    elif peer.isdigit():
        peer = join_host_port(host, int(peer))
    split_host_port(peer, f"peer address in {what}")
    if peer == client:
        raise UsageError(f"invalid {what} '{text}': the peer address must differ from the client address")
    return Member(client, peer)


def parse_peers(text: str) -> dict[int, Member]:
    peers: dict[int, Member] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        ident, sep, address = item.partition("=")
        if not sep:
            raise UsageError(f"invalid peer '{item}': expected ID=HOST:PORT[/PEER_HOST:PORT]")
        node_id = parse_node_id(ident.strip(), "peer id")
        if node_id in peers:
            raise UsageError(f"peer {node_id} is listed twice")
        member = parse_member(address, "peer address")
        taken = {a for m in peers.values() for a in m}
        for a in member:
            if a in taken:
                raise UsageError(f"address {a} is listed twice")
        peers[node_id] = member
    if not peers:
        raise UsageError("no peers given: expected ID=HOST:PORT[/PEER_HOST:PORT],...")
    return peers


def format_peers(peers: Mapping[int, Member | str]) -> str:
    return ",".join(f"{i}={peers[i]}" for i in sorted(peers))
