"""The demo's driver: starts the worker processes, follows what each reports, kills and restarts
them, and keeps the picture (who leads, who watches whom, what the registry holds)."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

STEP_TIMEOUT_S = 60.0       # a killed node's session must expire first (4 s): generous


@dataclass
class NodeView:
    ident: str
    address: str
    proc: subprocess.Popen | None = None
    znode: str = ""
    role: str = "starting"          # starting, leader, follower, dead
    watching: str = ""
    notified: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Demo:
    def __init__(self, server: str, nodes: int, registry: bool):
        self.root = f"/demo-{uuid.uuid4().hex[:6]}"       # removed again at the end
        self.server = server
        self.election_path = f"{self.root}/election"
        self.registry_root = f"{self.root}/service_registry" if registry else None
        self.service = "workers"
        self.nodes = [NodeView(f"node-{i}", f"127.0.0.1:{8080 + i}") for i in range(1, nodes + 1)]
        self.changes: queue.SimpleQueue = queue.SimpleQueue()
        self.registry: list[str] = []       # addresses, as discovery sees them
        self._client = None
        self._discovery = None
        self._lock = threading.Lock()

    # ---- processes ----

    def start(self) -> None:
        from dcli.client import CoordClient

        self._client = CoordClient(self.server).start()
        if self.registry_root:
            from dcli.recipes import ServiceRegistry

            self._discovery = ServiceRegistry(self._client, self.registry_root).watch(
                self.service, self._on_registry)
        for node in self.nodes:
            self.launch(node)
            self.wait_for(lambda n=node: n.role in ("leader", "follower"))

    def launch(self, node: NodeView) -> None:
        args = [sys.executable, "-m", "dcli.demo", "--server", self.server, "--id", node.ident,
                "--election", self.election_path, "--service", self.service, "--address", node.address]
        if self.registry_root:
            args += ["--registry", self.registry_root]
        node.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=dict(os.environ, GRPC_VERBOSITY="NONE"))
        node.role, node.znode, node.watching, node.notified = "starting", "", "", 0
        threading.Thread(target=self._read, args=(node, node.proc), daemon=True).start()

    def kill(self, node: NodeView) -> None:
        """SIGKILL: the node dies without a word; its znodes go when its session expires."""
        if node.alive:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait()
        node.role, node.watching = "dead", ""
        self.changes.put(node)

    def stop(self) -> None:
        for node in self.nodes:
            if node.alive:
                node.proc.send_signal(signal.SIGKILL)
                node.proc.wait()
        if self._discovery:
            self._discovery.stop()
        if self._client:
            from dcli.wire import errors

            try:
                self._client.delete(self.root, recursive=True)
            except errors.DcliError:
                pass
            self._client.close()

    def _read(self, node: NodeView, proc: subprocess.Popen) -> None:
        for raw in proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            with self._lock:
                if node.proc is not proc:       # a line from an earlier life of this node
                    continue
                kind = msg["event"]
                if kind == "joined":
                    node.znode = msg["znode"]
                elif kind == "leader":
                    node.role, node.watching = "leader", ""
                elif kind == "follow":
                    node.role, node.watching = "follower", msg["watching"]
                elif kind == "notified":
                    node.notified += 1
                node.log.append(kind)
            self.changes.put(node)

    def _on_registry(self, instances) -> None:
        with self._lock:
            self.registry = [i.address for i in instances]
        self.changes.put(None)

    # ---- the picture ----

    def leader(self) -> NodeView | None:
        return next((n for n in self.nodes if n.role == "leader" and n.alive), None)

    def by_name(self, ident: str) -> NodeView:
        return next(n for n in self.nodes if n.ident == ident)

    def wait_for(self, condition, timeout: float = STEP_TIMEOUT_S) -> None:
        """Until `condition()` holds, woken by each change the workers report."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the demo did not reach the expected state")
            try:
                self.changes.get(timeout=left)
            except queue.Empty:
                pass

    def settled(self) -> bool:
        """Every live node knows its role, exactly one leads, followers form one chain."""
        live = sorted((n for n in self.nodes if n.alive), key=lambda n: n.znode)
        if not live or any(n.role not in ("leader", "follower") or not n.znode for n in live):
            return False
        if [n.role for n in live] != ["leader"] + ["follower"] * (len(live) - 1):
            return False
        if any(b.watching != a.znode for a, b in zip(live, live[1:])):
            return False
        if self.registry_root is not None:
            workers = sorted(n.address for n in live if n.role == "follower")
            return sorted(self.registry) == workers
        return True

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """node, znode, role, watching, notifications — in znode order, dead nodes last."""
        with self._lock:
            order = sorted(self.nodes, key=lambda n: (not n.alive, n.znode or "~", n.ident))
            return [(n.ident, n.znode if n.alive else "-", n.role.upper() if n.role == "leader" else n.role,
                     n.watching or "-", str(n.notified)) for n in order]
