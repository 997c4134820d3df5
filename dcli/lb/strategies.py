"""Which backend gets the next connection or request: the seed's six strategies, and the
per-backend state they read (active connections, response times, failures and ejection).

Pure code: no sockets, no asyncio, no clock of its own (pass `clock`), so every choice is a
function of the inputs and can be tested as one.

    backends = BackendSet("weighted-round-robin", clock=time.monotonic)
    backends.update([("127.0.0.1:8081", {"weight": "2"}), ("127.0.0.1:8082", {})])
    b = backends.pick("10.0.0.7")            # NoBackendError when none is up
    b.begin()
    ... forward ...; backends.succeeded(b); backends.observe(b, 0.012)   # or backends.failed(b, "refused")
    b.end()

A backend that fails is ejected for `retry_after` seconds (doubling with each ejection in a row,
up to `max_retry_after`); when that has passed it is offered again, and its next success (a
request, or a health check) brings it back, its next failure ejects it for longer.
"""
from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

from dcli.recipes.registry import weight_of
from dcli.wire import errors

STRATEGIES = ("round-robin", "weighted-round-robin", "ip-hash", "least-connections",
              "response-time", "agent")
SAMPLES = 1024          # latencies kept per backend for the percentiles
EWMA_ALPHA = 0.3        # weight of the newest response time in the moving average


class NoBackendError(errors.DcliError):
    """No backend of the pool can take the request (none registered, or all ejected)."""

    exit_code = errors.ExitCode.UNAVAILABLE
    template = "{path}"


@dataclass(eq=False)
class Backend:
    """One backend address and what the balancer knows of it."""

    address: str
    meta: dict = field(default_factory=dict)
    active: int = 0                 # connections (tcp) or requests (http) in progress
    connections: int = 0            # connections opened to it
    requests: int = 0               # connections (tcp) or requests (http) sent to it
    errors: int = 0                 # failed attempts
    failures: int = 0               # failures in a row
    ejections: int = 0              # ejections in a row (the back-off doubles with each)
    ejected_until: float | None = None
    ewma_s: float | None = None     # moving average of response times (requests and health checks)
    latency_total_s: float = 0.0
    latency_count: int = 0
    samples: deque = field(default_factory=lambda: deque(maxlen=SAMPLES))

    @property
    def weight(self) -> int:
        return weight_of(self.meta)

    @property
    def pool(self) -> str:
        return str(self.meta.get("pool", ""))

    @property
    def load(self) -> float | None:
        """What an agent published: the larger of meta cpu and mem (fractions), None if neither."""
        values = []
        for key in ("cpu", "mem"):
            try:
                values.append(float(self.meta[key]))
            except (KeyError, TypeError, ValueError):
                pass
        return max(values) if values else None

    def begin(self) -> None:
        self.active += 1
        self.requests += 1

    def end(self) -> None:
        self.active = max(0, self.active - 1)

    def state(self, now: float) -> str:
        """up; ejected (not offered until its retry time); retrying (offered, on probation)."""
        if self.ejected_until is None:
            return "up"
        return "ejected" if now < self.ejected_until else "retrying"

    def percentile_s(self, q: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def stats(self, now: float) -> dict:
        def ms(v):
            return None if v is None else round(v * 1000, 3)
        mean = self.latency_total_s / self.latency_count if self.latency_count else None
        return {"address": self.address, "state": self.state(now), "pool": self.pool,
                "weight": self.weight, "load": self.load, "active": self.active,
                "connections": self.connections, "requests": self.requests, "errors": self.errors,
                "mean_ms": ms(mean), "p50_ms": ms(self.percentile_s(0.5)),
                "p99_ms": ms(self.percentile_s(0.99)), "ewma_ms": ms(self.ewma_s)}


class Strategy:
    """Chooses one of `candidates` (non-empty, in registration order, none ejected)."""

    name = ""

    def choose(self, candidates: list[Backend], client_ip: str) -> Backend:
        raise NotImplementedError

    def forget(self, address: str) -> None:
        """The backend left: drop any state kept for it."""


class RoundRobin(Strategy):
    """Each backend in turn."""

    name = "round-robin"

    def __init__(self):
        self.turn = 0

    def choose(self, candidates, client_ip):
        chosen = candidates[self.turn % len(candidates)]
        self.turn += 1
        return chosen


class SmoothWeighted(Strategy):
    """Smooth weighted round robin (nginx's): every pick adds each backend's weight to its
    current score, takes the highest and subtracts the total from it. Over any window of
    sum(weights) picks each backend gets exactly its weight, spread out rather than in runs."""

    name = "weighted-round-robin"

    def __init__(self):
        self.current: dict[str, float] = {}

    def weight_of(self, backend: Backend, candidates: list[Backend]) -> float:
        return backend.weight

    def choose(self, candidates, client_ip):
        weights = [self.weight_of(b, candidates) for b in candidates]
        best = None
        for b, w in zip(candidates, weights):
            self.current[b.address] = self.current.get(b.address, 0.0) + w
            if best is None or self.current[b.address] > self.current[best.address]:
                best = b
        self.current[best.address] -= sum(weights)
        return best

    def forget(self, address):
        self.current.pop(address, None)


class IpHash(Strategy):
    """Sticky by source address: rendezvous hashing (the backend with the highest hash of
    (address, client) wins), so a client keeps its backend while that one is up, and a backend
    that comes or goes moves only its own share of clients."""

    name = "ip-hash"

    def choose(self, candidates, client_ip):
        return max(candidates, key=lambda b: score(b.address, client_ip))


def score(address: str, client_ip: str) -> int:
    digest = hashlib.blake2b(f"{address}|{client_ip}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Ranked(Strategy):
    """The backend with the lowest rank; equal ranks take turns (round robin among them)."""

    def __init__(self):
        self.turn = 0

    def rank(self, backend: Backend):
        raise NotImplementedError

    def choose(self, candidates, client_ip):
        n, start = len(candidates), self.turn % len(candidates)
        self.turn += 1
        best = min(range(n), key=lambda i: (self.rank(candidates[i]), (i - start) % n))
        return candidates[best]


class LeastConnections(Ranked):
    """The backend with the fewest active connections per unit of weight."""

    name = "least-connections"

    def rank(self, backend):
        return backend.active / backend.weight


class Agent(Ranked):
    """The least loaded backend by what its agent publishes (meta cpu and mem: the larger of the
    two); backends that publish nothing come last; equal loads go by active connections."""

    name = "agent"

    def rank(self, backend):
        load = backend.load
        return (1, 0.0, backend.active) if load is None else (0, load, backend.active)


class ResponseTime(SmoothWeighted):
    """Weighted by measured response times: each backend's weight is 1 / (average response time
    x (active + 1)), picked smoothly as in weighted round robin, so a backend ten times slower
    gets about a tenth of the share (enough to keep measuring it). Health checks measure too.
    A backend not measured yet counts as fast as the fastest, so it is tried soon."""

    name = "response-time"

    def weight_of(self, backend, candidates):
        measured = [b.ewma_s for b in candidates if b.ewma_s is not None]
        floor = 1e-4                     # 0.1 ms: no infinite weights
        ewma = backend.ewma_s if backend.ewma_s is not None else (min(measured) if measured else 1.0)
        return 1.0 / (max(ewma, floor) * (backend.active + 1))


FACTORIES: dict[str, Callable[[], Strategy]] = {
    "round-robin": RoundRobin, "weighted-round-robin": SmoothWeighted, "ip-hash": IpHash,
    "least-connections": LeastConnections, "response-time": ResponseTime, "agent": Agent,
}


def make_strategy(name: str) -> Strategy:
    try:
        return FACTORIES[name]()
    except KeyError:
        raise errors.UsageError(f"unknown strategy '{name}': choose {', '.join(STRATEGIES)}") from None


DEFAULT_POOL = ""      # requests that no route sends elsewhere


class BackendSet:
    """The backends of one service and the strategy that picks among them.

    Pools: a backend is in pool P when its meta `pool` is P. `routed_pools` are the pools that
    routes name; the default pool holds every backend not in one of them. Each pool has its own
    strategy state (its own turn), while a backend's counters are shared."""

    def __init__(self, strategy: str, *, routed_pools: Iterable[str] = (),
                 clock: Callable[[], float] = time.monotonic, retry_after: float = 2.0,
                 max_retry_after: float = 30.0, eject_after: int = 1):
        make_strategy(strategy)          # a bad name fails here, not at the first pick
        self.strategy = strategy
        self.routed_pools = frozenset(routed_pools)
        self.clock = clock
        self.retry_after, self.max_retry_after, self.eject_after = retry_after, max_retry_after, eject_after
        self.backends: dict[str, Backend] = {}
        self._strategies: dict[str, Strategy] = {}

    def update(self, instances: Iterable[tuple[str, dict]]) -> tuple[list[str], list[str]]:
        """The registry's list now (address, meta), oldest first: keeps the state of backends
        still there, adds new ones, drops the rest. Returns (added, removed) addresses."""
        fresh: dict[str, Backend] = {}
        for address, meta in instances:
            if address in fresh:         # the same address twice: one backend
                continue
            b = self.backends.get(address) or Backend(address)
            b.meta = dict(meta or {})
            fresh[address] = b
        added = [a for a in fresh if a not in self.backends]
        removed = [a for a in self.backends if a not in fresh]
        self.backends = fresh
        for address in removed:
            for s in self._strategies.values():
                s.forget(address)
        return added, removed

    def all(self) -> list[Backend]:
        return list(self.backends.values())

    def members(self, pool: str = DEFAULT_POOL) -> list[Backend]:
        if pool == DEFAULT_POOL:
            return [b for b in self.backends.values() if b.pool not in self.routed_pools]
        return [b for b in self.backends.values() if b.pool == pool]

    def pick(self, client_ip: str = "", pool: str = DEFAULT_POOL, exclude: Iterable[str] = ()) -> Backend:
        """A backend of `pool` for `client_ip`, not one of `exclude` (already tried)."""
        members = self.members(pool)
        now = self.clock()
        skip = set(exclude)
        candidates = [b for b in members if b.address not in skip and b.state(now) != "ejected"]
        if not candidates:
            raise NoBackendError(message=self._why_none(members, skip, now, pool))
        strategy = self._strategies.get(pool)
        if strategy is None:
            strategy = self._strategies[pool] = make_strategy(self.strategy)
        return strategy.choose(candidates, client_ip)

    def _why_none(self, members: list[Backend], skip: set, now: float, pool: str) -> str:
        where = f"pool '{pool}'" if pool else "the service"
        if not members:
            return f"no backend registered in {where}"
        ejected = sum(1 for b in members if b.state(now) == "ejected")
        failed = sum(1 for b in members if b.address in skip)
        parts = [f"{n} {what}" for n, what in ((ejected, "ejected"), (failed, "failed just now")) if n]
        return f"no backend of {where} is up ({', '.join(parts)})"

    def succeeded(self, b: Backend) -> bool:
        """It answered: clears its failures. True when this brought an ejected backend back."""
        was_out = b.ejected_until is not None
        b.failures = b.ejections = 0
        b.ejected_until = None
        return was_out

    def failed(self, b: Backend, count: bool = True) -> float | None:
        """It failed (`count`: as a request, in its error count; a health check does not count).
        Returns the back-off when this ejected it (None: not ejected by this failure)."""
        if count:
            b.errors += 1
        b.failures += 1
        now = self.clock()
        if b.failures < self.eject_after or b.state(now) == "ejected":
            return None
        backoff = min(self.max_retry_after, self.retry_after * 2 ** b.ejections)
        b.ejections += 1
        b.ejected_until = now + backoff
        return backoff

    def observe(self, b: Backend, seconds: float, sample: bool = True) -> None:
        """A response time: into the moving average, and (`sample`) into the request statistics."""
        b.ewma_s = seconds if b.ewma_s is None else EWMA_ALPHA * seconds + (1 - EWMA_ALPHA) * b.ewma_s
        if sample:
            b.latency_total_s += seconds
            b.latency_count += 1
            b.samples.append(seconds)

    def stats(self) -> list[dict]:
        now = self.clock()
        return [b.stats(now) for b in self.backends.values()]
