"""One running balancer: the proxy, its backends following the registry, health checks, the
admin endpoint and the balancer's own registry entry, until SIGINT or SIGTERM.

The backends are the instances of `service` under the registry's root, kept current by the
recipe's Discovery (its callback runs on the client's thread and hands the list to the event
loop). If the session is lost, the balancer goes on with the backends it knew, opens a new
session and follows the registry again.

    config = Config(listen="127.0.0.1:8080", service="orders", strategy="least-connections")
    asyncio.run(LoadBalancer(config, new_client, log).run(ready=print))
"""
from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field
from typing import Callable

from dcli.lb import admin
from dcli.lb.health import HealthChecker
from dcli.lb.limits import Limits
from dcli.lb.proxy import Proxy
from dcli.lb.routes import Route
from dcli.lb.strategies import BackendSet
from dcli.lb.upstream import describe, split_address
from dcli.wire import errors

RECONNECT_DELAY_S = 2.0


@dataclass
class Config:
    listen: str
    service: str
    strategy: str = "round-robin"
    mode: str = "tcp"
    routes: list[Route] = field(default_factory=list)
    name: str = ""                       # under /dcli/lb; default: the service's name
    admin: str = "127.0.0.1:0"
    root: str = "/service_registry"
    health_interval: float = 2.0         # 0: no health checks
    health_path: str | None = None
    retry_after: float = 2.0
    connect_timeout: float = 2.0
    timeout: float = 30.0
    pool_size: int = 16
    limits: Limits = field(default_factory=Limits)


class LoadBalancer:
    def __init__(self, config: Config, new_client: Callable[[], object],
                 log: Callable[..., None] = lambda *a, **k: None):
        self.config, self.new_client, self.log = config, new_client, log
        self.name = config.name or config.service
        self.backends = BackendSet(config.strategy, routed_pools={r.pool for r in config.routes},
                                   retry_after=config.retry_after)
        self.proxy = Proxy(self.backends, config.mode, routes=config.routes, log=log,
                           connect_timeout=config.connect_timeout, timeout=config.timeout,
                           pool_size=config.pool_size, limits=config.limits)
        self.listen_address = self.admin_address = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lost: asyncio.Event | None = None
        self._view = None
        self._ready = False
        self._client = self._discovery = None

    async def run(self, ready: Callable[[str], None]) -> None:
        loop = self._loop = asyncio.get_running_loop()
        stop, self._lost = asyncio.Event(), asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (ValueError, RuntimeError, NotImplementedError):    # not the main thread
                pass
        server = await self._bind(self.config.listen, self.proxy.listen)
        admin_server = await self._bind(self.config.admin,
                                        lambda h, p: admin.serve_admin(h, p, self.snapshot))
        self.listen_address, self.admin_address = bound(server), bound(admin_server)
        health = None
        try:
            await self._follow()
            c = self.config
            ready(f"dcli lb listening on {self.listen_address} ({c.mode}, {c.strategy}, service {c.service}), "
                  f"admin {self.admin_address}")
            self._ready = True
            self._show_backends()
            if c.health_interval > 0:
                checker = HealthChecker(self.proxy, c.health_interval, c.health_path, c.connect_timeout)
                health = asyncio.ensure_future(checker.run())
            while not stop.is_set():
                waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._lost.wait())]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
                if self._lost.is_set() and not stop.is_set():
                    self.log("lost", "session lost: following the registry again with a new session",
                             service=c.service)
                    await self._refollow(stop)
        finally:
            if health is not None:
                health.cancel()
            server.close()
            admin_server.close()
            self.proxy.close()
            await asyncio.to_thread(self._unfollow)

    async def _bind(self, address: str, start):
        host, port = split_address(address)
        try:
            return await start(host, port)
        except OSError as e:
            raise errors.DcliError(message=f"cannot listen on {address}: {describe(e)}") from None

    # ---- the registry ----

    async def _follow(self) -> None:
        client, discovery = await asyncio.to_thread(self._connect)
        self._client, self._discovery = client, discovery
        self._apply(discovery.instances)

    async def _refollow(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(self._unfollow)
        self._lost.clear()
        while not stop.is_set():
            try:
                await self._follow()
                return
            except errors.DcliError as e:
                self.log("lost", f"cannot follow the registry yet: {e}", service=self.config.service)
                try:
                    await asyncio.wait_for(stop.wait(), RECONNECT_DELAY_S)
                except asyncio.TimeoutError:
                    pass

    def _connect(self):
        """Blocking (runs in a thread): a session, the discovery of the backends, our entry."""
        from dcli.client import ConnState
        from dcli.recipes import ServiceRegistry

        c = self.config
        client = self.new_client()
        try:
            client.add_listener(lambda state: state is ConnState.LOST and self._soon(self._lost.set))
            discovery = ServiceRegistry(client, c.root).watch(c.service, lambda i: self._soon(self._apply, i))
            admin.register(client, self.name, self.admin_address, {
                "listen": self.listen_address, "service": c.service, "mode": c.mode, "strategy": c.strategy})
        except BaseException:
            client.close()
            raise
        return client, discovery

    def _unfollow(self) -> None:
        if self._discovery is not None:
            self._discovery.stop()
        if self._client is not None:
            self._client.close()
        self._client = self._discovery = None

    def _soon(self, fn, *args) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:           # the loop has closed: we are stopping
            pass

    def _apply(self, instances) -> None:
        _added, removed = self.backends.update((i.address, i.meta) for i in instances)
        for address in removed:
            self.proxy.upstreams.drop(address)
        if self._ready:
            self._show_backends()

    def _show_backends(self) -> None:
        """One line whenever what the strategy sees changes (addresses, weights, pools, loads)."""
        parts = []
        for b in self.backends.all():
            notes = [f"weight {b.weight}"] if b.weight != 1 else []
            notes += [f"pool {b.pool}"] if b.pool else []
            if self.config.strategy == "agent":
                notes.append("load ?" if b.load is None else f"load {b.load:.2f}")
            parts.append(f"{b.address} ({', '.join(notes)})" if notes else b.address)
        view = " ".join(parts) or "(none)"
        if view != self._view:
            self._view = view
            self.log("backends", f"backends of {self.config.service}: {view}", service=self.config.service,
                     backends=[{"address": b.address, "meta": b.meta} for b in self.backends.all()])

    def snapshot(self) -> dict:
        c = self.config
        return {"name": self.name, "service": c.service, "mode": c.mode, "strategy": c.strategy,
                "listen": self.listen_address, "admin": self.admin_address,
                "routes": [r.text for r in c.routes], "clients": self.proxy.clients.stats(),
                "backends": self.backends.stats()}


def bound(server: asyncio.Server) -> str:
    host, port = server.sockets[0].getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
