"""The Python client: a coordination session (CoordClient) with watches and listeners."""
from dcli.client.coord import CoordClient, Transaction
from dcli.client.types import ConnState, EventType, KeeperState, Stat, WatchedEvent

__all__ = ["CoordClient", "Transaction", "ConnState", "EventType", "KeeperState", "Stat", "WatchedEvent"]
