"""Service registry and discovery, as the seed describes it.

A permanent `/service_registry` znode (the root is configurable) holds one permanent znode per
service, and under it one ephemeral sequential znode per running instance (`n_0000000004`)
whose data is the instance's address and metadata:

    /service_registry/orders/n_0000000004   {"address": "127.0.0.1:8081", "meta": {"weight": "2"}}

An instance's entry lives exactly as long as its session: when the process dies its znode goes.
Data that is not such a JSON object is read as a bare address (the seed's own examples store
just "host:port"). Discovery keeps a cached list that a watch keeps current.

    registry = ServiceRegistry(client)
    me = registry.register("orders", "127.0.0.1:8081", {"weight": "2"})
    watcher = registry.watch("orders", lambda instances: print(instances))
    registry.unregister(me)       # the elected leader leaves the pool of workers (seed)
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Callable

from dcli.client import ConnState, CoordClient
from dcli.recipes._sequential import Rerun, create_own, delete_quietly, ordered
from dcli.wire import errors
from dcli.wire.paths import validate_path

ROOT = "/service_registry"
PREFIX = "n_"


@dataclass(frozen=True)
class Instance:
    service: str
    name: str                   # the znode's name, e.g. n_0000000004
    address: str
    meta: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def weight(self) -> int:
        return weight_of(self.meta)


def weight_of(meta: dict) -> int:
    """`meta["weight"]` as a positive int (1 when absent or not a number)."""
    try:
        return max(1, int(meta.get("weight", 1)))
    except (TypeError, ValueError):
        return 1


def encode(address: str, meta: dict | None) -> bytes:
    return json.dumps({"address": address, "meta": meta or {}}, sort_keys=True).encode()


def decode(service: str, name: str, data: bytes | None) -> Instance:
    text = (data or b"").decode(errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("address"), str):
        meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
        return Instance(service, name, doc["address"], meta)
    return Instance(service, name, text.strip())


class ServiceRegistry:
    def __init__(self, client: CoordClient, root: str = ROOT):
        validate_path(root)
        self.client = client
        self.root = root.rstrip("/") or "/"

    def service_path(self, service: str) -> str:
        if "/" in service or service in ("", ".", ".."):
            raise errors.BadArgumentsError(service, f"Invalid service name: {service!r}")
        path = f"{self.root}/{service}" if self.root != "/" else f"/{service}"
        validate_path(path)
        return path

    def register(self, service: str, address: str, meta: dict | None = None) -> Registration:
        """Add this instance under `service`; it stays while the session lives."""
        path = create_own(self.client, self.service_path(service), PREFIX, encode(address, meta))
        return Registration(self, service, path, address, dict(meta or {}))

    def unregister(self, registration: Registration) -> None:
        registration.unregister()

    def services(self) -> list[str]:
        try:
            return sorted(self.client.get_children(self.root))
        except errors.NoNodeError:
            return []

    def instances(self, service: str, watch=None) -> list[Instance]:
        """The instances registered now, oldest first (`watch`: a one-time children watch)."""
        parent = self.service_path(service)
        try:
            names = ordered(self.client.get_children(parent, watch=watch), (PREFIX,))
        except errors.NoNodeError:
            if watch is not None:       # be told when the service appears
                self.client.exists(parent, watch=watch)
            return []
        futures = [(n, self.client.get_async(f"{parent}/{n}")) for n in names]
        out = []
        for name, fut in futures:
            try:
                data, _ = fut.result()
            except errors.NoNodeError:      # went between the two reads
                continue
            out.append(decode(service, name, data))
        return out

    def watch(self, service: str, on_change: Callable[[list[Instance]], None] | None = None,
              on_lost: Callable[[], None] | None = None) -> Discovery:
        """A live, cached view of `service`'s instances (see Discovery)."""
        return Discovery(self, service, on_change, on_lost).start()


class Registration:
    """One registered instance. `update(meta)` rewrites its metadata (an agent's load figures)."""

    def __init__(self, registry: ServiceRegistry, service: str, path: str, address: str, meta: dict):
        self.registry, self.service, self.path = registry, service, path
        self.address, self.meta = address, meta

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]

    def update(self, meta: dict) -> None:
        self.meta = dict(meta)
        self.registry.client.set(self.path, encode(self.address, self.meta))

    def unregister(self) -> None:
        delete_quietly(self.registry.client, self.path)


class Discovery:
    """The instances of one service, kept current: a persistent recursive watch on the service's
    znode tells of every instance that comes, goes or changes its metadata, and the list is read
    again. `on_change(instances)` runs on the client's event thread after each change; when the
    session ends `lost` is set, `on_lost()` is called and `on_change` is not called again."""

    def __init__(self, registry: ServiceRegistry, service: str,
                 on_change: Callable[[list[Instance]], None] | None = None,
                 on_lost: Callable[[], None] | None = None):
        self.registry, self.service, self.on_change, self.on_lost = registry, service, on_change, on_lost
        self.instances: list[Instance] = []
        self.lost = False
        self._lock = threading.Lock()        # guards the fields; never held over a request
        self._changed = threading.Condition(self._lock)
        self._stopped = False
        self._reported = False
        self._path = registry.service_path(service)
        self._refresh = Rerun(self._refresh_once)

    def start(self) -> Discovery:
        client = self.registry.client
        client.add_watch(self._path, self._on_event, "persistent_recursive")
        client.add_listener(self._on_state)
        self._refresh()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        client = self.registry.client
        client.remove_listener(self._on_state)
        try:
            client.remove_watch(self._path, self._on_event, "persistent_recursive")
        except (errors.DcliError,):
            pass

    def wait_for(self, predicate: Callable[[list[Instance]], bool], timeout: float | None = None) -> bool:
        with self._lock:
            return self._changed.wait_for(lambda: predicate(self.instances), timeout)

    def _on_event(self, _event) -> None:
        self._refresh()

    def _on_state(self, state: ConnState) -> None:
        if state is ConnState.CONNECTED:
            self._refresh()                 # changes missed while away
        elif state is ConnState.LOST:
            with self._lock:
                self.lost = True
                self._changed.notify_all()
            if self.on_lost:
                self.on_lost()

    def _refresh_once(self) -> None:
        try:
            current = self.registry.instances(self.service)
        except (errors.ConnectionLossError, errors.NotConnectedError, errors.SessionExpiredError):
            return
        with self._lock:
            if self._stopped or (current == self.instances and self._reported and
                                 [i.meta for i in current] == [i.meta for i in self.instances]):
                return
            self.instances, self._reported = current, True
            self._changed.notify_all()
        if self.on_change:
            self.on_change(current)
