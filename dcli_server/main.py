"""Run one node: the gRPC server on its port, the node's data directory, clean shutdown on signals."""
from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import signal

import grpc

from dcli.wire.addresses import join_host_port, split_host_port
from dcli.v1 import broker_pb2_grpc, cluster_pb2_grpc, kv_pb2_grpc
from dcli.v1 import coord_pb2_grpc as pb_grpc
from dcli_server.api.broker_groups import Groups
from dcli_server.api.broker_service import BrokerService
from dcli_server.api.cluster_service import ClusterService
from dcli_server.api.coord_service import CoordinationService
from dcli_server.api.kv_peers import GrpcTransport
from dcli_server.api.kv_service import KVService
from dcli_server.broker.broker import Broker
from dcli_server.broker.config import BrokerConfig
from dcli_server.broker.membership import start_membership
from dcli_server.broker.replicated import READY_WAIT_S, ReplicatedBroker
from dcli_server.broker.tree_offsets import TreeOffsetStore
from dcli_server.config import ServerConfig
from dcli_server.kv.node import KVNode
from dcli_server.node import CoordNode

log = logging.getLogger("dcli.server")

MAX_REQUEST_BYTES = 8 * 1024 * 1024     # one client frame; a znode's data is capped lower (Limits)
# one gRPC message of any kind: a snapshot on its way to a lagging follower, a Produce request
# of many batches (Kafka's socket.request.max.bytes is 100 MiB); each service caps its own below
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


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


async def serve(settings: ServerConfig, *, ready=None, broker_config: BrokerConfig | None = None,
                max_request_bytes: int = MAX_REQUEST_BYTES) -> None:
    """Serve until SIGINT/SIGTERM. `ready(address)` is called once the port is bound. With more
    than one peer, the node also joins the broker cluster (BrokerMembership, its own threads)."""
    config = settings.node_config()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    listen = settings.listen
    broker_session_timeout_ms = settings.broker_session_timeout_ms
    if broker_config is None:
        broker_config, _ = settings.broker()
    group_config = settings.group_config()
    node = CoordNode(config)
    await node.start()
    if broker_config.broker_id < 0:
        broker_config = dataclasses.replace(broker_config, broker_id=config.node_id)
    clustered = len(config.peers) > 1
    broker_class = ReplicatedBroker if clustered else Broker
    broker = broker_class(config.data_dir / "broker", broker_config, fsync=config.fsync.value)
    offsets = None
    if clustered:       # committed offsets in the tree, read by whichever broker coordinates next
        offsets = TreeOffsetStore(lambda: broker.membership.client(wait=READY_WAIT_S))
    groups = Groups(config.data_dir / "groups", group_config, offsets=offsets)
    kv_config = settings.kv_config()
    kv_transport = GrpcTransport(kv_config.request_timeout_ms)
    kv = KVNode(config.data_dir, kv_config, kv_transport)
    try:
        await broker.start()
        await groups.start()
    except BaseException:
        await broker.close()
        await node.stop()
        raise
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", max(MAX_MESSAGE_BYTES, max_request_bytes)),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ("grpc.so_reuseport", 0),
    ])
    pb_grpc.add_CoordinationServicer_to_server(CoordinationService(node, max_frame_bytes=max_request_bytes), server)
    broker_pb2_grpc.add_BrokerServicer_to_server(BrokerService(broker, groups), server)
    cluster_pb2_grpc.add_ClusterServicer_to_server(ClusterService(node), server)
    kv_pb2_grpc.add_KVServicer_to_server(KVService(kv), server)
    host, _ = split_host_port(listen, "--listen", allow_zero=True)
    try:
        bound = server.add_insecure_port(listen)
    except RuntimeError:        # grpc's way of saying the port is taken or the host is wrong
        bound = 0
    if bound == 0:
        kv.store.close()
        await groups.close()
        await broker.close()
        await node.stop()
        raise OSError(f"address {listen} is in use or not available")
    address = join_host_port(host, bound)
    node.config.name = address
    if not config.peers:
        node.peers[config.node_id] = address
    broker.host, broker.port = host, bound
    membership = None
    if clustered:       # attached before the first request, started once the port serves
        membership = start_membership(node, broker_config.broker_id, host, bound, broker_session_timeout_ms,
                                      broker_config=broker_config, start=False)
        broker.attach(membership)
    await server.start()
    await kv.start(address)
    if membership is not None:
        membership.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
    if ready:
        ready(address)
    await stop.wait()
    if membership is not None:
        await asyncio.to_thread(membership.stop)
    await server.stop(grace=1.0)
    await kv.stop()
    await kv_transport.close()
    await groups.close()
    await broker.close()
    await node.stop()
