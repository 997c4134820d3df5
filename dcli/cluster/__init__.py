"""The local cluster manager: N node processes on this machine (`dcli cluster`, tests, benchmarks)."""
from dcli.cluster.manager import LocalCluster, default_directory
from dcli.cluster.state import Node, NodeState

__all__ = ["LocalCluster", "Node", "NodeState", "default_directory"]
