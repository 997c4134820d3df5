"""The coordination service's domain: a ZooKeeper-style tree of znodes, sessions and watches.

Pure, single-threaded code: no gRPC, no I/O, time only through the injected clock. The gRPC
servicer drives a `Coordinator`; storage persists what `log` hands it and feeds it back to
`Coordinator.recover`.

    tree.py         DataTree: the znodes and the deterministic application of Txns
    prep.py         write requests -> validated Txns (ZooKeeper's PrepRequestProcessor)
    sessions.py     SessionTable: ids, passwords, timeouts, expiry deadlines
    watches.py      WatchManager: one-time, persistent and recursive watches, event fan-out
    coordinator.py  Coordinator: the interface the server calls
    limits.py       Limits and ZooKeeper's fixed constants
"""
from dcli_server.coord.coordinator import Coordinator
from dcli_server.coord.limits import Limits

__all__ = ["Coordinator", "Limits"]
