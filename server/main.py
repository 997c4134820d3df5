"""The composition root: one node's services built once (Services), attached to its listeners,
served until SIGINT/SIGTERM and closed in order."""
from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import os
import signal
import sys

from dataclasses import dataclass

from dcli.wire.addresses import join_host_port
from dcli.wire.errors import DcliError
from dcli_server.api.broker_groups import Groups
from dcli_server.auth import Authenticator, AuthStore
from dcli_server.broker.broker import Broker
from dcli_server.broker.config import BrokerConfig
from dcli_server.broker.membership import start_membership
from dcli_server.broker.migrate import OldLayout, find_old_layout, migrate, refuse_if_clustered
from dcli_server.broker.replication import READY_WAIT_S
from dcli_server.broker.tree_offsets import TreeOffsetStore
from dcli_server.config import ServerConfig
from dcli_server.kv.node import KVNode
from dcli_server.listeners.peer import PeerListener
from dcli_server.listeners.peer_identity import wire_id
from dcli_server.listeners.peer_kv import FramesKVTransport
from dcli_server.listeners.client import MAX_REQUEST_BYTES, ClientListener
from dcli_server.listeners.zk import ZooKeeperListener
from dcli_server.local_session import LocalSession
from dcli_server.node import CoordNode

log = logging.getLogger("dcli.server")



def dump_tasks() -> None:
    """SIGUSR1: every asyncio task and where it waits, into the log (jstack for this server)."""
    out = io.StringIO()
    tasks = asyncio.all_tasks()
    out.write(f"{len(tasks)} tasks (SIGUSR1)\n")
    for task in tasks:
        out.write(f"{task.get_name()} {task.get_coro()!r}\n")
        for frame in task.get_stack(limit=8):
            out.write(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}\n")
    log.warning("%s", out.getvalue())


def _migrate(client, old: OldLayout, broker_id: int) -> None:
    """On the membership agent's thread, before the broker counts as registered. A refusal
    found only now (the tree has another topic of the same name) stops the server."""
    try:
        migrate(client, old, broker_id)
    except DcliError:
        raise               # the tree is between leaders: the agent tries again
    except Exception as e:  # noqa: BLE001 - refused, or the disk failed: say why and stop
        _stop(f"the migration of {old.data_dir} failed: {e}")


def _stop(message: str) -> None:
    log.critical("%s", message)
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(1)


@dataclass
class Services:
    """The node's domain services, built once and shared by every listener."""

    settings: ServerConfig
    node: CoordNode
    broker: Broker
    groups: Groups
    kv: KVNode
    kv_transport: FramesKVTransport
    auth: Authenticator
    peers: PeerListener | None = None       # the peer listener, in a cluster
    membership: object | None = None        # BrokerMembership, once the client port is known
    old_layout: OldLayout | None = None     # an older single-node data directory to migrate

    @classmethod
    async def open(cls, settings: ServerConfig, broker_config: BrokerConfig | None = None) -> Services:
        config = settings.node_config()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        if broker_config is None:
            broker_config, _ = settings.broker()
        if broker_config.broker_id < 0:
            broker_config = dataclasses.replace(broker_config, broker_id=config.node_id)
        old_layout = find_old_layout(config.data_dir)      # refused before anything starts
        if old_layout is not None:
            refuse_if_clustered(old_layout, len(config.peers))
        peers = None
        if settings.peer_listen is not None:
            peers = PeerListener(config.node_id, settings.peer_listen, secret=settings.cluster_secret(),
                                 cluster_id=wire_id(settings.cluster_identity()), tls=settings.peer_tls())
            try:
                await peers.start()
            except OSError as e:
                await peers.close()
                raise OSError(f"peer address {settings.peer_listen}: {e.strerror or e}") from None
        node = CoordNode(config, transport=peers.raft if peers else None, channel=peers)
        node.super_digest = settings.zk_super_digest
        if peers is not None:
            peers.attach(node)
        try:
            await node.start()
        except BaseException:
            if peers is not None:
                await peers.close()
            raise
        # a node alone is a broker cluster of one: the same broker, with nobody to call
        broker = Broker(config.data_dir / "broker", broker_config, fsync=config.fsync.value,
                        peers=peers.brokers if peers is not None else None)
        if peers is not None:
            peers.attach_broker(broker)
        # committed offsets in the tree, read by whichever broker coordinates next
        groups = Groups(TreeOffsetStore(lambda: broker.membership.client(wait=READY_WAIT_S)),
                        dataclasses.replace(settings.group_config(), group_max_size=broker_config.group_max_size,
                                            max_groups=broker_config.max_groups))
        kv_config = settings.kv_config()
        kv_transport = FramesKVTransport(peers.transport if peers else None, kv_config.request_timeout_ms)
        if peers is not None:
            kv_config.peer_addresses.setdefault(config.node_id, peers.address)
        kv_config.join = config.join
        kv = KVNode(config.data_dir, kv_config, kv_transport, tree=LocalSession(node),
                    coord_members=lambda: node.replica.raft.voters | node.replica.raft.learners)
        if peers is not None:
            peers.attach_kv(kv)
        auth = Authenticator(AuthStore(node, LocalSession(node)), token_ttl_s=settings.auth_token_ttl)
        services = cls(settings, node, broker, groups, kv, kv_transport, auth, peers, old_layout=old_layout)
        try:
            await broker.start()
            await groups.start()
        except BaseException:
            await services.close()
            raise
        return services

    async def serving_at(self, host: str, port: int) -> str:
        """The client listener is bound: tell the services their address, and start what talks
        to other nodes (the KV node's heartbeats, the broker's cluster membership)."""
        address = join_host_port(host, port)
        node, broker = self.node, self.broker
        node.config.name = address
        if not node.config.peers:
            node.peers[node.config.node_id] = address
        broker.host, broker.port = host, port
        # attached before the first request it serves
        self.membership = start_membership(node, broker.broker_id, host, port,
                                           self.settings.broker_session_timeout_ms,
                                           broker_config=broker.config, start=False,
                                           session_file=broker.directory / "membership-session")
        if self.old_layout is not None:
            old, broker_id = self.old_layout, broker.broker_id
            self.membership.before_ready = lambda client: _migrate(client, old, broker_id)
        broker.attach(self.membership)
        return address

    async def start(self, address: str) -> None:
        await self.kv.start(address)
        if self.membership is not None:
            self.membership.start()

    async def close(self) -> None:
        if self.membership is not None:
            await asyncio.to_thread(self.membership.stop)
        await self.kv.stop()
        await self.kv_transport.close()
        await self.groups.close()
        await self.broker.close()
        await self.auth.store.close()
        await self.node.stop()
        if self.peers is not None:
            await self.peers.close()


async def serve(settings: ServerConfig, *, ready=None, broker_config: BrokerConfig | None = None,
                max_request_bytes: int = MAX_REQUEST_BYTES) -> None:
    """Serve until SIGINT/SIGTERM. `ready(address, zk_address)` is called once the ports are bound."""
    services = await Services.open(settings, broker_config)
    listener = ClientListener(services, settings.listen, max_request_bytes=max_request_bytes)
    try:
        host, port = listener.bind()
    except OSError:
        await services.close()
        raise
    address = await services.serving_at(host, port)
    await listener.start()
    zk = None
    if settings.zk_listen is not None:
        zk = ZooKeeperListener(services.node, settings.zk_listen, max_buffer=settings.jute_maxbuffer,
                               max_client_cnxns=settings.max_client_cnxns, auth=services.auth,
                               whitelist=settings.zk_4lw_whitelist, super_digest=settings.zk_super_digest)
        try:
            await zk.start()
        except OSError as e:
            await listener.stop(grace=0)
            await services.close()
            raise OSError(e.errno, f"ZooKeeper address {settings.zk_listen}: {e.strerror or e}") from None
    secure = None
    if settings.zk_secure_listen is not None:
        secure = ZooKeeperListener(services.node, settings.zk_secure_listen, max_buffer=settings.jute_maxbuffer,
                                   max_client_cnxns=settings.max_client_cnxns, auth=services.auth,
                                   ssl=settings.zk_tls(), whitelist=settings.zk_4lw_whitelist,
                                   super_digest=settings.zk_super_digest)
        try:
            await secure.start()
        except OSError as e:
            await listener.stop(grace=0)
            if zk is not None:
                await zk.stop()
            await services.close()
            raise OSError(e.errno, f"ZooKeeper TLS address {settings.zk_secure_listen}: {e.strerror or e}") from None
        log.info("ZooKeeper's protocol over TLS on %s", secure.address)
    await services.start(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
    if ready:
        ready(address, zk.address if zk else None)
    await stop.wait()
    for zk_listener in (zk, secure):
        if zk_listener is not None:
            await zk_listener.stop()
    if services.membership is not None:         # the broker leaves its cluster before the port closes
        await asyncio.to_thread(services.membership.stop)
        services.membership = None
    await listener.stop(grace=1.0)
    await services.close()
