"""ZooKeeper's four-letter words on the ZooKeeper port: `ruok`, `srvr`, `stat`, `envi`, `isro`.

A connection whose first four bytes are a four-letter word gets a text answer and is closed,
as ZooKeeper's NIOServerCnxn does. Those five are served (kazoo's `server_version()` reads
`envi`, monitoring scripts `ruok` and `srvr`); the rest of ZooKeeper's words get its answer for a
word outside `4lw.commands.whitelist`.
"""
from __future__ import annotations

import platform
import socket

SERVED = ("ruok", "srvr", "stat", "envi", "isro")
KNOWN = SERVED + ("conf", "cons", "crst", "dirs", "dump", "gtmk", "stmk", "srst", "wchc", "wchp", "wchs",
                  "mntr", "hash")
FOUR_LETTER_WORDS = frozenset(word.encode() for word in KNOWN)


def answer_word(word: str, listener) -> bytes:
    if word not in SERVED:
        return f"{word} is not executed because it is not in the whitelist.\n".encode()
    if word == "ruok":
        return b"imok"
    if word == "isro":
        return b"rw"
    if word == "envi":
        return _envi(listener).encode()
    return _srvr(listener, with_clients=(word == "stat")).encode()


def _version(listener) -> str:
    return f"{listener.version}-dcli, built on dcli"


def _mode(node) -> str:
    if len(node.replica.raft.voters) <= 1:
        return "standalone"
    return "leader" if node.writable() else "follower"


def _srvr(listener, with_clients: bool) -> str:
    node = listener.node
    lines = [f"Zookeeper version: {_version(listener)}"]
    if with_clients:
        lines += ["Clients:", ""]
    lines += ["Latency min/avg/max: 0/0.0/0", f"Received: {listener.received}", f"Sent: {listener.sent}",
              f"Connections: {sum(listener.connections.values())}", "Outstanding: 0",
              f"Zxid: 0x{node.coordinator.last_zxid:x}", f"Mode: {_mode(node)}",
              f"Node count: {len(node.coordinator.tree)}"]
    return "\n".join(lines) + "\n"


def _envi(listener) -> str:
    return "\n".join([
        "Environment:",
        f"zookeeper.version={_version(listener)}",
        f"host.name={socket.gethostname()}",
        f"os.name={platform.system()}",
        f"os.arch={platform.machine()}",
        f"os.version={platform.release()}",
        f"python.version={platform.python_version()}",
    ]) + "\n"
