"""ZooKeeper's four-letter words on the ZooKeeper port, behind its whitelist.

A connection whose first four bytes are a four-letter word gets a text answer and is closed, as
ZooKeeper's NIOServerCnxn does. Which words are answered is `--zk-4lw-whitelist` (ZooKeeper's
`4lw.commands.whitelist`: by default `srvr` only; `*` for all); a word outside it gets ZooKeeper's
"not in the whitelist" line. The formats are ZooKeeper 3.8's: `mntr` is tab-separated keys that
monitoring scrapes, `envi` says `zookeeper.version=` (kazoo's `server_version()` reads it).
"""
from __future__ import annotations

import os
import platform
import socket
import time
from pathlib import Path

SERVED = ("ruok", "srvr", "stat", "mntr", "envi", "conf", "cons", "crst", "srst", "wchs", "wchc", "wchp",
          "dump", "dirs", "isro")
KNOWN = SERVED + ("gtmk", "stmk", "hash")
FOUR_LETTER_WORDS = frozenset(word.encode() for word in KNOWN)
DEFAULT_WHITELIST = ("srvr",)


def parse_whitelist(raw: str) -> tuple[str, ...]:
    """`srvr,ruok` or `*`; ValueError naming a word ZooKeeper does not have."""
    words = tuple(w.strip() for w in raw.split(",") if w.strip())
    if words == ("*",):
        return SERVED
    unknown = [w for w in words if w not in KNOWN]
    if unknown:
        raise ValueError(f"unknown four-letter word {unknown[0]!r}: choose from {', '.join(SERVED)} or *")
    return tuple(w for w in words if w in SERVED)


def answer_word(word: str, listener) -> bytes:
    if word not in listener.whitelist:
        return f"{word} is not executed because it is not in the whitelist.\n".encode()
    return _ANSWERS[word](listener).encode()


def _built() -> str:
    """When this copy of dcli was built or installed, as ZooKeeper prints its build date."""
    try:
        stamp = Path(__file__).stat().st_mtime
    except OSError:
        stamp = 0.0
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp))


def _version(listener) -> str:
    return f"{listener.version}-dcli, built on {_built()}"


# Java's names for the machine, as ZooKeeper's envi prints them
_JAVA_ARCH = {"x86_64": "amd64", "AMD64": "amd64", "i686": "x86", "i386": "x86"}


def _mode(node) -> str:
    if len(node.replica.raft.voters) <= 1:
        return "standalone"
    return "leader" if node.writable() else "follower"


def _srvr(listener, clients: bool = False) -> str:
    node = listener.node
    lines = [f"Zookeeper version: {_version(listener)}"]
    if clients:
        lines += ["Clients:", *(c.describe() for c in listener.live), ""]
    lines += ["Latency min/avg/max: 0/0.0/0", f"Received: {listener.received}", f"Sent: {listener.sent}",
              f"Connections: {len(listener.live)}", "Outstanding: 0",
              f"Zxid: 0x{node.coordinator.last_zxid:x}", f"Mode: {_mode(node)}",
              f"Node count: {len(node.coordinator.tree)}"]
    return "\n".join(lines) + "\n"


def _watches(listener) -> dict[int, set[tuple[object, str]]]:
    return listener.node.coordinator.watches.all_by_session()


def _wchs(listener) -> str:
    by_session = _watches(listener)
    paths = {path for held in by_session.values() for _, path in held}
    total = sum(len(held) for held in by_session.values())
    return f"{len(by_session)} connections watching {len(paths)} paths\nTotal watches:{total}\n"


def _wchc(listener) -> str:
    out = []
    for session_id, held in sorted(_watches(listener).items()):
        out.append(f"0x{session_id:x}")
        out += [f"\t{path}" for path in sorted({p for _, p in held})]
    return "\n".join(out) + ("\n" if out else "")


def _wchp(listener) -> str:
    by_path: dict[str, set[int]] = {}
    for session_id, held in _watches(listener).items():
        for _, path in held:
            by_path.setdefault(path, set()).add(session_id)
    out = []
    for path in sorted(by_path):
        out.append(path)
        out += [f"\t0x{sid:x}" for sid in sorted(by_path[path])]
    return "\n".join(out) + ("\n" if out else "")


def _dump(listener) -> str:
    c = listener.node.coordinator
    ids = sorted(c.sessions.ids())
    lines = ["SessionTracker dump:", f"Global Sessions({len(ids)}):"]
    lines += [f"0x{sid:x}\t{c.sessions.get(sid).timeout_ms}ms" for sid in ids]
    owners = [(sid, sorted(c.tree.ephemerals(sid))) for sid in ids]
    owners = [(sid, paths) for sid, paths in owners if paths]
    lines += ["ephemeral nodes dump:", f"Sessions with Ephemerals ({len(owners)}):"]
    for sid, paths in owners:
        lines.append(f"0x{sid:x}:")
        lines += [f"\t{p}" for p in paths]
    return "\n".join(lines) + "\n"


def _size(directory: Path) -> int:
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def _dirs(listener) -> str:
    data = listener.node.config.data_dir
    return f"datadir_size: {_size(data)}\nlogdir_size: {_size(data / 'raft') if (data / 'raft').is_dir() else 0}\n"


def _conf(listener) -> str:
    node = listener.node
    limits = node.config.limits
    host, port = listener.address.rsplit(":", 1)
    return "\n".join([
        f"clientPort={port}", f"clientPortAddress={host}", "secureClientPort=-1",
        f"dataDir={node.config.data_dir}", f"dataDirSize={_size(node.config.data_dir)}",
        f"dataLogDir={node.config.data_dir}", "tickTime=2000",
        f"maxClientCnxns={listener.max_client_cnxns}",
        f"minSessionTimeout={limits.min_session_timeout_ms}", f"maxSessionTimeout={limits.max_session_timeout_ms}",
        f"serverId={node.config.node_id}",
    ]) + "\n"


def _mntr(listener) -> str:
    node = listener.node
    c = node.coordinator
    watches = sum(len(held) for held in _watches(listener).values())
    ephemerals = sum(len(c.tree.ephemerals(sid)) for sid in c.sessions.ids())
    rows = [
        ("zk_version", _version(listener)), ("zk_server_state", _mode(node)),
        ("zk_avg_latency", "0.0"), ("zk_max_latency", "0"), ("zk_min_latency", "0"),
        ("zk_packets_received", listener.received), ("zk_packets_sent", listener.sent),
        ("zk_num_alive_connections", len(listener.live)), ("zk_outstanding_requests", 0),
        ("zk_znode_count", len(c.tree)), ("zk_watch_count", watches),
        ("zk_ephemerals_count", ephemerals), ("zk_global_sessions", len(c.sessions)),
        ("zk_open_file_descriptor_count", _open_files()),
        ("zk_last_proposal_size", -1), ("zk_uptime", int((time.monotonic() - listener.started) * 1000)),
    ]
    return "".join(f"{key}\t{value}\n" for key, value in rows)


def _open_files() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def _envi(listener) -> str:
    return "\n".join([
        "Environment:",
        f"zookeeper.version={_version(listener)}",
        f"host.name={socket.gethostname()}",
        f"python.version={platform.python_version()}",
        f"os.name={platform.system()}",
        f"os.arch={_JAVA_ARCH.get(platform.machine(), platform.machine())}",
        f"os.version={platform.release()}",
        f"user.name={_user()}",
        f"user.home={Path.home()}",
        f"user.dir={os.getcwd()}",
    ]) + "\n"


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return os.environ.get("USER", "?")


def _reset(listener, what: str) -> str:
    listener.received = listener.sent = 0
    return f"{what} stats reset.\n"


_ANSWERS = {
    "ruok": lambda _: "imok", "isro": lambda _: "rw",
    "srvr": _srvr, "stat": lambda listener: _srvr(listener, clients=True),
    "mntr": _mntr, "envi": _envi, "conf": _conf, "dirs": _dirs, "dump": _dump,
    "wchs": _wchs, "wchc": _wchc, "wchp": _wchp,
    "cons": lambda listener: "".join(c.describe() + "\n" for c in listener.live) + "\n",
    "crst": lambda listener: _reset(listener, "Connection"), "srst": lambda listener: _reset(listener, "Server"),
}
