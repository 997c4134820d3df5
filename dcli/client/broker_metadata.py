"""What a broker client knows of the cluster (Kafka's client `Metadata`): the brokers by id, each
topic's partitions with their leader and leader epoch, which topics are due to be asked for
again, and in which order to try servers for a request any broker can answer. Pure bookkeeping:
no gRPC here; BrokerChannel asks the brokers and feeds the answers in.

    md = ClusterMetadata(["127.0.0.1:7181", "127.0.0.1:7182"])
    md.update(reply, answered_by="127.0.0.1:7182", now=time.monotonic())   # a MetadataResponse
    md.leader("chat", 0)        # Leader(node_id=1, address='127.0.0.1:7181', epoch=3), or None
    md.invalidate(["chat"])     # a broker said it does not lead chat-0
    md.to_refresh(now)          # ['chat']: ask for it now (not again within min_refresh_s)

A topic is asked for again only when something went wrong with it (a broker no longer leads one
of its partitions, a leader is unknown or unreachable), and at most once per `min_refresh_s`, so
that a storm of errors does not become a storm of Metadata requests.
"""
from __future__ import annotations

import threading
from typing import NamedTuple

MIN_REFRESH_S = 0.05
NEVER = float("-inf")
WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


class Leader(NamedTuple):
    node_id: int
    address: str        # host:port
    epoch: int          # the leader epoch the metadata gave (sent as current_leader_epoch)


def join_host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def host_of(address: str) -> str:
    return address.rpartition(":")[0]


class ClusterMetadata:
    """See the module's docstring. Thread-safe: the producer's sender, gRPC's callback threads
    and the application may all use one."""

    def __init__(self, bootstrap: list[str], min_refresh_s: float = MIN_REFRESH_S):
        self.min_refresh_s = min_refresh_s
        self._brokers: dict[int, str] = {}
        self._topics: dict[str, list[tuple[int, int]]] = {}    # partition -> (leader id, epoch)
        self._stale: set[str] = set()
        self._asked: dict[str, float] = {}                      # topic -> when it was last asked for
        self._order: list[str] = list(dict.fromkeys(bootstrap))
        self._lock = threading.Lock()

    # ---- what the brokers said ----

    def update(self, reply, answered_by: str, now: float) -> None:
        """Take in a MetadataResponse that `answered_by` gave. A broker that advertises a
        wildcard host (it listens on every interface) is reached at the host that answered."""
        brokers = {}
        for b in reply.brokers:
            host = host_of(answered_by) if b.host in WILDCARD_HOSTS else b.host
            brokers[b.node_id] = join_host_port(host, b.port)
        with self._lock:
            if brokers:
                self._brokers = brokers
            for address in brokers.values():
                if address not in self._order:
                    self._order.append(address)
            for t in reply.topics:
                self._asked[t.name] = now
                self._stale.discard(t.name)
                if t.error_code:
                    # e.g. 3 or 5 just after creation: keep the count, forget the leaders
                    known = self._topics.get(t.name)
                    if known is not None:
                        self._topics[t.name] = [(-1, -1)] * len(known)
                    continue
                parts = [(-1, -1)] * len(t.partitions)
                for p in t.partitions:
                    if 0 <= p.partition < len(parts) and not p.error_code:
                        parts[p.partition] = (p.leader, p.leader_epoch)
                self._topics[t.name] = parts

    def forget(self, topic: str) -> None:
        """Drop what is known of `topic` (deleted, or its partitions changed)."""
        with self._lock:
            self._topics.pop(topic, None)
            self._stale.discard(topic)
            self._asked.pop(topic, None)

    # ---- lookups ----

    def partition_count(self, topic: str) -> int | None:
        with self._lock:
            parts = self._topics.get(topic)
        return None if parts is None else len(parts)

    def leader(self, topic: str, partition: int) -> Leader | None:
        """The partition's leader, or None when the topic, the partition, its leader or the
        leader's address is unknown."""
        with self._lock:
            parts = self._topics.get(topic)
            if parts is None or not 0 <= partition < len(parts):
                return None
            node_id, epoch = parts[partition]
            address = self._brokers.get(node_id) if node_id >= 0 else None
        return None if address is None else Leader(node_id, address, epoch)

    def brokers(self) -> dict[int, str]:
        """node id -> address of every broker the last answer listed."""
        with self._lock:
            return dict(self._brokers)

    # ---- asking again ----

    def invalidate(self, topics) -> None:
        """What is known of `topics` may be wrong: ask for them at the next refresh."""
        with self._lock:
            self._stale.update(topics)

    def to_refresh(self, now: float, topics=None) -> list[str]:
        """The stale topics (of `topics`, default all) that may be asked for now: not asked for
        in the last `min_refresh_s`. They count as asked for from `now`."""
        with self._lock:
            due = sorted(t for t in (self._stale if topics is None else self._stale.intersection(topics))
                         if now - self._asked.get(t, NEVER) >= self.min_refresh_s)
            for t in due:
                self._asked[t] = now
            return due

    def refresh_wait(self, now: float) -> float | None:
        """Seconds until a stale topic may be asked for (0: now); None when none is stale."""
        with self._lock:
            if not self._stale:
                return None
            since = max(now - self._asked.get(t, NEVER) for t in self._stale)    # the longest wait
        return 0.0 if since >= self.min_refresh_s else self.min_refresh_s - since

    # ---- where to send what any broker can answer ----

    def candidates(self) -> list[str]:
        """Servers to try in turn: the last one that answered first, those that failed last;
        the bootstrap servers and every broker ever listed."""
        with self._lock:
            return list(self._order)

    def answered(self, address: str) -> None:
        with self._lock:
            if self._order and self._order[0] != address:
                if address in self._order:
                    self._order.remove(address)
                self._order.insert(0, address)

    def failed(self, address: str) -> None:
        with self._lock:
            if address in self._order:
                self._order.remove(address)
                self._order.append(address)
