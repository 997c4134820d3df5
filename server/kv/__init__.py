"""The Dynamo-style key-value store's domain: the partitioner (hash ring or key ranges), versions
and their reconciliation, Merkle trees for anti-entropy, and one node's sqlite3 storage engine.
No gRPC here; the coordinator that talks to replicas builds on these.
"""
