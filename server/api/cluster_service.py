"""The Cluster service: the operators' view of a node (status, membership, leadership). Node-to-node
traffic is the peer listener's (server/listeners/peer.py)."""
from __future__ import annotations

import contextlib
import logging

import grpc

from dcli.v1 import cluster_pb2 as cpb
from dcli.v1 import cluster_pb2_grpc as cpb_grpc
from dcli.wire.errors import BadArgumentsError, ClusterStateError, DcliError, UnavailableError
from dcli.wire.peers import parse_member, parse_node_id
from dcli_server.api.errors import guarded
from dcli_server.consensus import ConfChange, ConfChangeType, ProposalDropped

log = logging.getLogger("dcli.server")


class ClusterService(cpb_grpc.ClusterServicer):
    def __init__(self, node):
        self._node = node

    async def Status(self, request: cpb.StatusRequest, context: grpc.aio.ServicerContext) -> cpb.NodeStatus:
        return self._node.status()

    @guarded
    async def AddMember(self, request: cpb.MemberRequest, context) -> cpb.MemberResponse:
        try:
            node_id = parse_node_id(request.node_id)
            member = parse_member(request.address, "member address")    # CLIENT[/PEER]
        except DcliError as e:
            raise BadArgumentsError("", str(e)) from None
        # a learner: the leader promotes it once it has caught up, so a member that never
        # answers (a wrong address, a node not started yet) cannot take the quorum away
        return await self._change(ConfChange(ConfChangeType.ADD_LEARNER_NODE, node_id, str(member).encode()))

    @guarded
    async def RemoveMember(self, request: cpb.MemberRequest, context) -> cpb.MemberResponse:
        return await self._change(ConfChange(ConfChangeType.REMOVE_NODE, request.node_id))

    async def _change(self, change: ConfChange) -> cpb.MemberResponse:
        with self._refusals():
            await self._node.change_members(change)
        return cpb.MemberResponse(members=self._node.status().members)

    @guarded
    async def TransferLeader(self, request: cpb.TransferLeaderRequest, context) -> cpb.TransferLeaderResponse:
        with self._refusals():
            await self._node.transfer_leadership(request.to)
        return cpb.TransferLeaderResponse(leader_id=self._node.replica.leader_id)

    @contextlib.contextmanager
    def _refusals(self):
        """The consensus core's refusals as errors: a change that cannot be made (already a
        member, not a member, the last voter), and a node that is not the leader (which names it)."""
        try:
            yield
        except ValueError as e:
            raise ClusterStateError("", str(e)) from None
        except ProposalDropped as e:
            lead = f"; the leader is node {e.leader} at {self._node.peers.get(e.leader, '?')}" if e.leader else ""
            raise UnavailableError("", f"{e}{lead}") from None
