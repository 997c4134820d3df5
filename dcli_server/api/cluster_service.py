"""The Cluster service: node-to-node Raft traffic, forwarded requests, and the operators' view."""
from __future__ import annotations

import grpc

from dcli.v1 import cluster_pb2 as cpb
from dcli.v1 import cluster_pb2_grpc as cpb_grpc


class ClusterService(cpb_grpc.ClusterServicer):
    def __init__(self, node):
        self._node = node

    async def Status(self, request: cpb.StatusRequest, context: grpc.aio.ServicerContext) -> cpb.NodeStatus:
        return self._node.status()
