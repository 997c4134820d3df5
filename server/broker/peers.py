"""How a broker talks to another broker: the calls, not the wire.

A follower fetches from its partitions' leader and asks it where a leader epoch ends; a broker
that is not the controller hands a leader election to the one that is. The listener layer
implements this over the peer listener (server/listeners/peer.py); the broker knows only these
methods and the messages of broker.proto. Brokers are named by id: in a cluster a node's broker
id is its node id, and the peer listener knows who it is talking to, so a follower can only
fetch as itself.

    link = peers.link(2)
    reply = await link.fetch(pb.FetchRequest(replica_id=2, ...), timeout=10.5)
    await link.close()
"""
from __future__ import annotations

from typing import Protocol

from dcli.v1 import broker_pb2 as pb


class PeerUnreachable(Exception):
    """The other broker did not answer (down, unreachable, too slow): try again later."""


class BrokerLink(Protocol):
    """Calls to one other broker; each raises PeerUnreachable when no answer comes."""

    async def fetch(self, request: pb.FetchRequest, timeout: float) -> pb.FetchResponse: ...

    async def offset_for_leader_epoch(self, request: pb.OffsetForLeaderEpochRequest,
                                      timeout: float) -> pb.OffsetForLeaderEpochResponse: ...

    async def elect_leaders(self, request: pb.ElectLeadersRequest, timeout: float) -> pb.ElectLeadersResponse: ...

    async def close(self) -> None: ...


class BrokerPeers(Protocol):
    def link(self, broker_id: int) -> BrokerLink: ...


class _NoLink:
    """A link to a broker this node has no way to reach: every call is PeerUnreachable."""

    def __init__(self, broker_id: int):
        self.broker_id = broker_id

    async def _unreachable(self, request, timeout: float):
        raise PeerUnreachable(f"broker {self.broker_id}: this node has no peer listener")

    fetch = offset_for_leader_epoch = elect_leaders = _unreachable

    async def close(self) -> None:
        return None


class NoPeers:
    """The BrokerPeers of a node alone (no peer listener): there is nobody to call. Its broker
    is the only replica of every partition, so nothing asks for a link in practice."""

    def link(self, broker_id: int) -> BrokerLink:
        return _NoLink(broker_id)
