"""The `--peers` list of a cluster: `1=127.0.0.1:7181,2=127.0.0.1:7182,3=127.0.0.1:7183`.

The same list is given to every node; a node finds its own address in it by `--node-id`.

    >>> parse_peers("1=127.0.0.1:7181, 2=127.0.0.1:7182")
    {1: '127.0.0.1:7181', 2: '127.0.0.1:7182'}
    >>> format_peers({2: "h:2", 1: "h:1"})
    '1=h:1,2=h:2'
"""
from __future__ import annotations

from dcli.wire.addresses import split_host_port
from dcli.wire.errors import UsageError

MAX_NODE_ID = 255


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


def parse_peers(text: str) -> dict[int, str]:
    peers: dict[int, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        ident, sep, address = item.partition("=")
        if not sep:
            raise UsageError(f"invalid peer '{item}': expected ID=HOST:PORT")
        node_id = parse_node_id(ident.strip(), "peer id")
        if node_id in peers:
            raise UsageError(f"peer {node_id} is listed twice")
        address = parse_address(address.strip(), "peer address")
        if address in peers.values():
            raise UsageError(f"address {address} is listed twice")
        peers[node_id] = address
    if not peers:
        raise UsageError("no peers given: expected ID=HOST:PORT,...")
    return peers


def format_peers(peers: dict[int, str]) -> str:
    return ",".join(f"{i}={peers[i]}" for i in sorted(peers))
