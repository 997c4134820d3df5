"""ForwardLink: a follower's stream to the leader, for what only the leader may do.

Writes, `sync` and session opens of the follower's clients go to the leader on one
`Cluster.Forward` stream, with the sessions the follower heard from (the leader decides expiry).
Replies come back in the order the leader executed the requests. When the stream breaks, every
request still waiting is reported lost (`on_lost`): its outcome is unknown, as on any
connection loss, and the follower's clients retry according to their delivery policy.

    link = ForwardLink(node_id=2, address="127.0.0.1:7181", on_reply=..., on_lost=...)
    link.start()
    link.send(cpb.ForwardedRequest(id=7, session_id=sid, request=req))
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

import grpc

from dcli.v1 import cluster_pb2 as cpb
from dcli.v1 import cluster_pb2_grpc as cpb_grpc
from dcli_server.cluster.transport import CHANNEL_OPTIONS

log = logging.getLogger("dcli.server.forward")

CONNECT_TIMEOUT_S = 1.0
FRAME_REQUESTS = 1000           # requests per frame at most


class ForwardLink:
    def __init__(self, node_id: int, leader_id: int, address: str, *,
                 on_reply: Callable[[cpb.ForwardReply], None], on_lost: Callable[["ForwardLink"], None],
                 on_commit: Callable[[int, int], None] = lambda index, term: None,
                 on_ready: Callable[[], None] = lambda: None):
        self.node_id = node_id
        self.leader_id = leader_id
        self.address = address
        self._on_reply = on_reply
        self._on_lost = on_lost
        self._on_ready = on_ready
        self._on_commit = on_commit
        self.ready = False          # connected: until then nothing is sent on it
        # what the next frame carries: all that was sent while the previous one was written
        self._requests: list[cpb.ForwardedRequest] = []
        self._alive: list[int] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._channel: grpc.aio.Channel | None = None
        self.closed = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send(self, request: cpb.ForwardedRequest) -> None:
        self._requests.append(request)
        self._wake.set()

    def send_alive(self, sessions: list[int]) -> None:
        if sessions:
            self._alive.extend(sessions)
            self._wake.set()

    def close(self) -> None:
        """Stop; on_lost is called once for what was pending."""
        if self.closed:
            return
        self.closed = True
        self.ready = False
        if self._task is not None:
            self._task.cancel()
        self._on_lost(self)

    async def _run(self) -> None:
        self._channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        call = writer = None
        try:
            await asyncio.wait_for(self._channel.channel_ready(), CONNECT_TIMEOUT_S)
            call = cpb_grpc.ClusterStub(self._channel).Forward()
            writer = asyncio.get_running_loop().create_task(self._write(call))
            self.ready = True
            self._on_ready()
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    break
                if message.commit_index:
                    self._on_commit(message.commit_index, message.commit_term)
                for reply in message.replies:
                    self._on_reply(reply)
        except asyncio.CancelledError:
            pass
        except asyncio.TimeoutError:
            log.info("no forward stream to node %d: it does not answer", self.leader_id)
        except grpc.aio.AioRpcError as e:
            log.info("forward stream to node %d lost: %s", self.leader_id, e.code().name)
        except Exception:
            log.exception("forward stream to node %d failed", self.leader_id)
        finally:
            self.ready = False
            if writer is not None:
                writer.cancel()
            if call is not None:
                call.cancel()
            await self._channel.close(grace=None)
            if not self.closed:
                self.closed = True
                self._on_lost(self)

    async def _write(self, call) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._requests or self._alive:
                    requests = self._requests[:FRAME_REQUESTS]
                    del self._requests[:FRAME_REQUESTS]
                    alive, self._alive = self._alive, []
                    await call.write(cpb.ForwardFrame(**{"from": self.node_id}, requests=requests,
                                                      alive_sessions=alive))
        except asyncio.CancelledError:
            raise
        except Exception:           # the stream broke: the reader sees it too
            call.cancel()
