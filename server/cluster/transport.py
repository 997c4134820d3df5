"""Transport: one node's Raft messages to its peers, over gRPC streams on the peers' own ports.

Each peer gets a queue and a long-lived client stream (`Cluster.Raft`) that carries whatever
the queue holds, many messages per frame. Sending never blocks the caller: a full queue or a
broken stream drops messages, and Raft resends what matters (it is built for lossy links).

    transport = Transport(node_id=1, peers={2: "127.0.0.1:7182", 3: "127.0.0.1:7183"})
    transport.start()
    transport.send(2, encoded_message)
    transport.reachable(2)        # the stream to 2 is up
"""
from __future__ import annotations

import asyncio
import logging
import random

import grpc

from dcli.v1 import cluster_pb2 as cpb
from dcli.v1 import cluster_pb2_grpc as cpb_grpc

log = logging.getLogger("dcli.server.transport")

QUEUE_LIMIT = 10_000            # messages waiting for one peer; beyond it they are dropped
FRAME_MESSAGES = 256            # messages per frame
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 500),
]


class _Peer:
    __slots__ = ("node_id", "address", "queue", "up", "task", "channel")

    def __init__(self, node_id: int, address: str):
        self.node_id = node_id
        self.address = address
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_LIMIT)
        self.up = False
        self.task: asyncio.Task | None = None
        self.channel: grpc.aio.Channel | None = None


class Transport:
    def __init__(self, node_id: int, peers: dict[int, str]):
        self.node_id = node_id
        self._peers = {i: _Peer(i, a) for i, a in peers.items() if i != node_id}
        self._closed = False

    def start(self) -> None:
        for peer in self._peers.values():
            self._start_peer(peer)

    def _start_peer(self, peer: _Peer) -> None:
        peer.task = asyncio.get_running_loop().create_task(self._run(peer))

    def add_peer(self, node_id: int, address: str) -> None:
        if node_id == self.node_id or node_id in self._peers:
            return
        peer = self._peers[node_id] = _Peer(node_id, address)
        if not self._closed:
            self._start_peer(peer)

    def remove_peer(self, node_id: int) -> None:
        peer = self._peers.pop(node_id, None)
        if peer is not None and peer.task is not None:
            peer.task.cancel()

    def send(self, to: int, message: bytes) -> None:
        peer = self._peers.get(to)
        if peer is None:
            return
        try:
            peer.queue.put_nowait(message)
        except asyncio.QueueFull:
            pass                     # Raft resends: a lagging peer is probed again later

    def reachable(self, node_id: int) -> bool:
        peer = self._peers.get(node_id)
        return peer is not None and peer.up

    async def close(self) -> None:
        self._closed = True
        tasks = [p.task for p in self._peers.values() if p.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for p in self._peers.values():
            if p.channel is not None:
                await p.channel.close(grace=None)

    async def _run(self, peer: _Peer) -> None:
        peer.channel = grpc.aio.insecure_channel(peer.address, options=CHANNEL_OPTIONS)
        stub = cpb_grpc.ClusterStub(peer.channel)
        while True:
            call = stub.Raft()
            try:
                while True:
                    batch = [await peer.queue.get()]
                    while len(batch) < FRAME_MESSAGES and not peer.queue.empty():
                        batch.append(peer.queue.get_nowait())
                    # blocks while the peer does not read (paused): the queue fills, then drops
                    await call.write(cpb.RaftFrame(**{"from": self.node_id}, messages=batch))
                    peer.up = True
            except asyncio.CancelledError:
                call.cancel()
                raise
            except Exception as e:      # the stream broke: the peer died or restarted
                if peer.up:
                    log.info("stream to node %d (%s) lost: %s", peer.node_id, peer.address, e)
            call.cancel()
            peer.up = False
            # what queued up while the peer was away is stale: Raft will send afresh
            while not peer.queue.empty():
                peer.queue.get_nowait()
            await asyncio.sleep(0.05 + random.random() * 0.1)
