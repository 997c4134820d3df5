"""Thin gRPC servicers: translate streams and messages to the node, map errors, nothing else."""
