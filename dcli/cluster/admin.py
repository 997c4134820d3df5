"""Membership and leadership of a running cluster, through its leader's Cluster service.

    admin.add_member(["127.0.0.1:7181", ...], 4, "127.0.0.1:7184")   # -> the members, as the leader sees them
    admin.wait_promoted(servers, 4, 60.0)        # -> the members once node 4 votes, or None
    admin.remove_member(servers, 4)
    admin.transfer_leader(servers, 2)                                  # -> the new leader's id

Each call first asks every given address for its status (side by side, short deadline) to find
the leader, then asks the leader. Errors come back as one-line DcliErrors.

A member is added as a learner: it gets the log but no vote, so a member that never answers
cannot take the quorum away. The leader promotes it to voter by itself once its log has caught
up; `wait_promoted` watches for that.
"""
from __future__ import annotations

import time

from dcli.cluster import status as status_rpc
from dcli.wire import errors

CALL_TIMEOUT_S = 30.0
PROMOTE_POLL_S = 0.2
PROMOTE_WAIT_S = 60.0     # how long `member add` waits for a new node to catch up and vote


def find_leader(servers: list[str], timeout: float = status_rpc.DEFAULT_TIMEOUT_S) -> str:
    """The address of the node that says it leads."""
    answers = status_rpc.query(dict(enumerate(servers)), timeout)
    for i, answer in answers.items():
        if getattr(answer, "role", "") == "leader":
            return answer.address or servers[i]
    raise errors.UnavailableError(",".join(servers), "no node answers as the leader: is a majority of the cluster up?")


def _call(servers: list[str], method: str, request):
    import grpc

    from dcli.client.rpc import error_from_rpc
    from dcli.client.tls import open_channel
    from dcli.v1 import cluster_pb2_grpc as cpb_grpc

    leader = find_leader(servers)
    with open_channel(leader, [("grpc.enable_retries", 0)]) as channel:
        try:
            return getattr(cpb_grpc.ClusterStub(channel), method)(request, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as e:
            raise error_from_rpc(e, leader) from None


def add_member(servers: list[str], node_id: int, address: str) -> list:
    from dcli.v1 import cluster_pb2 as cpb

    return list(_call(servers, "AddMember", cpb.MemberRequest(node_id=node_id, address=address)).members)


def wait_promoted(servers: list[str], node_id: int, timeout_s: float) -> list | None:
    """The members (as the leader sees them) once `node_id` is a voter; None if it is still a
    learner (or gone) after `timeout_s`. A leader that does not answer for a moment (an
    election) is asked again until the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = status_rpc.query({0: find_leader(servers)})[0]
        except errors.UnavailableError:
            answer = None
        members = list(getattr(answer, "members", ()))
        if any(m.node_id == node_id and m.role == "voter" for m in members):
            return members
        if time.monotonic() + PROMOTE_POLL_S > deadline:
            return None
        time.sleep(PROMOTE_POLL_S)


def remove_member(servers: list[str], node_id: int) -> list:
    from dcli.v1 import cluster_pb2 as cpb

    return list(_call(servers, "RemoveMember", cpb.MemberRequest(node_id=node_id)).members)


def transfer_leader(servers: list[str], to: int) -> int:
    from dcli.v1 import cluster_pb2 as cpb

    return _call(servers, "TransferLeader", cpb.TransferLeaderRequest(to=to)).leader_id
