"""The Python client: a coordination session (CoordClient) with watches and listeners, and the
broker's Producer and Admin, and the key-value store's KVClient (imported on first use: a
coordination-only program never loads them)."""
from dcli.client.coord import CoordClient, Transaction
from dcli.client.types import ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, ConnState, EventType, KeeperState, Stat, WatchedEvent

__all__ = ["CoordClient", "Transaction", "ACL", "OPEN_ACL_UNSAFE", "READ_ACL_UNSAFE", "ConnState", "EventType",
           "KeeperState", "Stat", "WatchedEvent",
           "Producer", "RecordMetadata", "Admin", "Consumer", "ConsumerRecord", "KVClient"]


def __getattr__(name: str):
    if name in ("Producer", "RecordMetadata"):
        from dcli.client import producer
        return getattr(producer, name)
    if name in ("Consumer", "ConsumerRecord"):
        from dcli.client import consumer
        return getattr(consumer, name)
    if name == "Admin":
        from dcli.client.admin import Admin
        return Admin
    if name == "KVClient":
        from dcli.client.kv import KVClient
        return KVClient
    raise AttributeError(f"module 'dcli.client' has no attribute {name!r}")
