"""The local cluster manager: N node processes on this machine (`dcli cluster`, tests, benchmarks)."""
from dcli.cluster.manager import LocalCluster, Node, NodeState, default_directory

__all__ = ["LocalCluster", "Node", "NodeState", "default_directory"]
