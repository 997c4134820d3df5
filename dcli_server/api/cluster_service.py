"""The Cluster service: node-to-node Raft traffic, forwarded requests, and the operators' view."""
from __future__ import annotations

import asyncio
import logging

import grpc

from dcli.v1 import cluster_pb2 as cpb
from dcli.v1 import cluster_pb2_grpc as cpb_grpc
from dcli.wire.errors import DcliError
from dcli.wire.peers import parse_address, parse_node_id
from dcli_server.consensus import ConfChange, ConfChangeType, ProposalDropped

log = logging.getLogger("dcli.server")


class ClusterService(cpb_grpc.ClusterServicer):
    def __init__(self, node):
        self._node = node

    async def Raft(self, request_iterator, context: grpc.aio.ServicerContext) -> cpb.RaftAck:
        replica = self._node.replica
        async for frame in request_iterator:
            for message in frame.messages:
                try:
                    replica.step(message)
                except ValueError as e:         # a message that does not decode
                    log.warning("dropping a bad raft message from node %d: %s", getattr(frame, "from"), e)
        return cpb.RaftAck()

    async def Forward(self, request_iterator, context: grpc.aio.ServicerContext):
        node = self._node
        conn = node.attach_forwarder()

        async def read() -> None:
            try:
                async for frame in request_iterator:
                    node.submit_forwarded(conn, frame)
            finally:
                conn.close_after_flush = True
                conn.wake.set()

        reader = asyncio.get_running_loop().create_task(read())
        try:
            while not conn.closed:
                await conn.wake.wait()
                ready = node.take_ready(conn)
                if ready:
                    commit, term = node.replica.commit_hint()
                    yield cpb.ForwardReplies(replies=ready, commit_index=commit, commit_term=term)
                if conn.close_after_flush and not conn.outbox:
                    return
        finally:
            reader.cancel()
            node.disconnect(conn)

    async def Status(self, request: cpb.StatusRequest, context: grpc.aio.ServicerContext) -> cpb.NodeStatus:
        return self._node.status()

    async def AddMember(self, request: cpb.MemberRequest, context) -> cpb.MemberResponse:
        try:
            node_id = parse_node_id(request.node_id)
            address = parse_address(request.address, "member address")
        except DcliError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        change = ConfChange(ConfChangeType.ADD_NODE, node_id, address.encode())
        return await self._change(change, context)

    async def RemoveMember(self, request: cpb.MemberRequest, context) -> cpb.MemberResponse:
        return await self._change(ConfChange(ConfChangeType.REMOVE_NODE, request.node_id), context)

    async def _change(self, change: ConfChange, context) -> cpb.MemberResponse:
        try:
            await self._node.change_members(change)
        except ValueError as e:                     # already a member, not a member, the last one
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except ProposalDropped as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, self._not_leader(e))
        return cpb.MemberResponse(members=self._node.status().members)

    async def TransferLeader(self, request: cpb.TransferLeaderRequest, context) -> cpb.TransferLeaderResponse:
        try:
            await self._node.transfer_leadership(request.to)
        except ValueError as e:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except ProposalDropped as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, self._not_leader(e))
        return cpb.TransferLeaderResponse(leader_id=self._node.replica.leader_id)

    def _not_leader(self, e: ProposalDropped) -> str:
        lead = f"; the leader is node {e.leader} at {self._node.peers.get(e.leader, '?')}" if e.leader else ""
        return f"{e}{lead}"
