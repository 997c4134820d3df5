"""Ask nodes for their Cluster.Status, all at once, each with a short deadline.

A node that is down answers at once (connection refused); a frozen one (SIGSTOP) accepts the
connection and never answers, so every call carries a deadline and the calls run side by side:
asking N nodes costs one deadline at worst, never a hang.

    >>> answers = query({1: "127.0.0.1:7181", 2: "127.0.0.1:7182"}, timeout=1.0)
    >>> answers[1].role                     # a NodeStatus, or the exception that came instead
    'leader'
"""
from __future__ import annotations

DEFAULT_TIMEOUT_S = 1.0


def query(addresses: dict[int, str], timeout: float = DEFAULT_TIMEOUT_S) -> dict[int, object]:
    """node id -> its `NodeStatus` message, or the exception its call ended with."""
    import grpc

    from dcli.client.tls import open_channel
    from dcli.v1 import cluster_pb2 as cpb
    from dcli.v1 import cluster_pb2_grpc as cpb_grpc

    channels = {i: open_channel(a, [("grpc.enable_retries", 0)])
                for i, a in addresses.items()}
    try:
        calls = {i: cpb_grpc.ClusterStub(ch).Status.future(cpb.StatusRequest(), timeout=timeout)
                 for i, ch in channels.items()}
        out: dict[int, object] = {}
        for i, call in calls.items():
            try:
                out[i] = call.result()
            except grpc.RpcError as e:
                out[i] = e
        return out
    finally:
        for ch in channels.values():
            ch.close()


def describe_failure(error: object) -> str:
    """A short reason for a failed call: `deadline exceeded`, `connection refused`, ..."""
    code = getattr(error, "code", None)
    if callable(code):
        name = code().name.lower().replace("_", " ")
        details = error.details() if callable(getattr(error, "details", None)) else ""
        if details and "refused" in details.lower():
            return "connection refused"
        return name
    return str(error)
