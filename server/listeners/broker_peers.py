"""BrokerPeers over gRPC: a follower's fetches, OffsetForLeaderEpoch and forwarded elections,
one channel per link, every call with a deadline; a call that gets no answer raises
PeerUnreachable (server/broker/peers.py), an answer the other broker refused comes back
as the project's error."""
from __future__ import annotations

import grpc

from dcli.v1 import broker_pb2_grpc as pb_grpc
from dcli.wire import errors
from dcli_server.broker.peers import PeerUnreachable

# gRPC channels to other nodes' client ports (until these calls move to the peer listener)
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 500),
]


class GrpcBrokerLink:
    def __init__(self, address: str):
        self.address = address
        self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = pb_grpc.BrokerStub(self._channel)

    async def _call(self, method: str, request, timeout: float):
        try:
            return await getattr(self._stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            tag = next((v for k, v in (e.trailing_metadata() or ()) if k == "dcli-error"), None)
            if tag is not None:
                raise errors.from_tag(tag, e.details() or "") from None
            raise PeerUnreachable(f"{method} to {self.address}: {e.code().name}") from None

    async def fetch(self, request, timeout: float):
        return await self._call("Fetch", request, timeout)

    async def offset_for_leader_epoch(self, request, timeout: float):
        return await self._call("OffsetForLeaderEpoch", request, timeout)

    async def elect_leaders(self, request, timeout: float):
        return await self._call("ElectLeaders", request, timeout)

    async def close(self) -> None:
        await self._channel.close()


class GrpcBrokerPeers:
    def link(self, address: str) -> GrpcBrokerLink:
        return GrpcBrokerLink(address)
