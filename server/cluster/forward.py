"""Forwarding: what a follower's clients ask that only the leader may do, and the answers.

Writes, `sync` and session opens of the follower's clients go to the leader as one-way
ForwardFrames on the peer connection, with the sessions the follower heard from (the leader
decides expiry); the leader answers with ForwardReplies frames, in the order it executed the
requests, each carrying its commit index. A follower's `ForwardLink` is one such exchange with
one leader, numbered (`link`) so that the leader tells a new one from an old one on the same
connection. When the connection breaks, or the leader changes, every request still waiting is
reported lost (`on_lost`): its outcome is unknown, as on any connection loss, and the
follower's clients retry according to their delivery policy.

    channel = ForwardChannel(peers)                       # peers: the node's PeerChannel
    link = channel.open(leader_id=1, on_reply=..., on_lost=..., on_commit=..., on_ready=...)
    link.send(ppb.ForwardedRequest(id=7, session_id=sid, request=req))
    server = ForwardServer(node, peers)                   # the leader's side, for every follower
"""
from __future__ import annotations

import asyncio
import collections
import logging
import random
from typing import Callable, Protocol

from dcli.v1 import peer_pb2 as ppb

log = logging.getLogger("dcli.server.forward")

CONNECT_TIMEOUT_S = 1.0
FRAME_REQUESTS = 1000           # requests per frame at most


class PeerChannel(Protocol):
    """What forwarding needs of the peer transport (server/listeners/peer.py implements it)."""

    async def wait_connected(self, node_id: int, timeout: float) -> bool: ...

    async def send_forward(self, to: int, frame: ppb.ForwardFrame) -> None: ...

    async def send_replies(self, to: int, replies: ppb.ForwardReplies) -> None: ...


class ForwardLink:
    def __init__(self, channel: PeerChannel, node_id: int, leader_id: int, link: int, *,
                 on_reply: Callable[[ppb.ForwardReply], None], on_lost: Callable[["ForwardLink"], None],
                 on_commit: Callable[[int, int], None] = lambda index, term: None,
                 on_ready: Callable[[], None] = lambda: None):
        self._channel = channel
        self.node_id = node_id
        self.leader_id = leader_id
        self.link = link
        self._on_reply = on_reply
        self._on_lost = on_lost
        self._on_ready = on_ready
        self._on_commit = on_commit
        self.ready = False          # connected: until then nothing is sent on it
        # what the next frame carries: all that was sent while the previous one was written
        self._requests: list[ppb.ForwardedRequest] = []
        self._alive: list[int] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.closed = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send(self, request: ppb.ForwardedRequest) -> None:
        self._requests.append(request)
        self._wake.set()

    def send_alive(self, sessions: list[int]) -> None:
        if sessions:
            self._alive.extend(sessions)
            self._wake.set()

    def replies(self, message: ppb.ForwardReplies) -> None:
        """The leader's answers on this link."""
        if self.closed:
            return
        if message.commit_index:
            self._on_commit(message.commit_index, message.commit_term)
        for reply in message.replies:
            self._on_reply(reply)

    def close(self) -> None:
        """Stop; on_lost is called once for what was pending."""
        if self.closed:
            return
        self.closed = True
        self.ready = False
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._on_lost(self)

    async def _run(self) -> None:
        try:
            if not await self._channel.wait_connected(self.leader_id, CONNECT_TIMEOUT_S):
                log.info("no forwarding to node %d: it does not answer", self.leader_id)
                return
            self.ready = True
            self._on_ready()
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._requests or self._alive:
                    requests = self._requests[:FRAME_REQUESTS]
                    del self._requests[:FRAME_REQUESTS]
                    alive, self._alive = self._alive, []
                    await self._channel.send_forward(self.leader_id, ppb.ForwardFrame(
                        **{"from": self.node_id}, link=self.link, requests=requests, alive_sessions=alive))
        except asyncio.CancelledError:
            pass
        except Exception as e:      # the connection broke (PeerUnreachable) or a bug: pending is lost
            log.info("forwarding to node %d lost: %s", self.leader_id, str(e) or type(e).__name__)
        finally:
            self.ready = False
            if not self.closed:
                self.close()


class ForwardChannel:
    """The follower's side: at most one live link, to the leader; the leader's replies routed to it."""

    def __init__(self, channel: PeerChannel, node_id: int):
        self._channel = channel
        self.node_id = node_id
        self.link: ForwardLink | None = None

    def open(self, leader_id: int, **callbacks) -> ForwardLink:
        # a random number, not a count: a restarted follower must not reuse one the leader ended
        number = random.getrandbits(63) or 1
        self.link = ForwardLink(self._channel, self.node_id, leader_id, number, **callbacks)
        self.link.start()
        return self.link

    def on_replies(self, peer: int, message: ppb.ForwardReplies) -> None:
        link = self.link
        if link is not None and link.leader_id == peer and link.link == message.link:
            link.replies(message)
            if message.closed:              # the leader ended it (it no longer leads, say)
                link.close()

    def on_peer_down(self, peer: int) -> None:
        link = self.link
        if link is not None and link.leader_id == peer:
            link.close()


class _Stream:
    """One follower link on the leader: its requests waiting to run, the Conn they run on."""

    __slots__ = ("link", "conn", "inbox", "has_work", "tasks")

    def __init__(self, link: int, conn):
        self.link = link
        self.conn = conn
        self.inbox: collections.deque[ppb.ForwardFrame] = collections.deque()
        self.has_work = asyncio.Event()
        self.tasks: list[asyncio.Task] = []


class ForwardServer:
    """The leader's side: one stream (a Conn of the node, session 0) per follower's link, whose
    requests run in order and whose answers go back in order, each with the commit index.

    A frame arrives in the peer connection's reader with up to FRAME_REQUESTS requests, and a
    busy follower sends many back to back; they run one frame per turn of the event loop, in a
    task of the stream's own, so that heartbeats and other peers' messages go on meanwhile (run
    in the reader, a burst of 20,000 pipelined creates held the loop long enough for the
    followers to elect another leader)."""

    def __init__(self, node, channel: PeerChannel):
        self._node = node
        self._channel = channel
        self._streams: dict[int, _Stream] = {}     # peer -> its current link
        self._ended: dict[int, int] = {}        # peer -> the link this node ended last

    def on_frame(self, peer: int, frame: ppb.ForwardFrame) -> None:
        if self._ended.get(peer) == frame.link:     # sent before the follower heard it was over
            self._tell_closed(peer, frame.link)
            return
        stream = self._streams.get(peer)
        if stream is None or stream.link != frame.link:
            if stream is not None:                      # the follower opened a new link: the old is over
                self._end(peer)
            stream = self._streams[peer] = _Stream(frame.link, self._node.attach_forwarder())
            loop = asyncio.get_running_loop()
            stream.tasks = [loop.create_task(self._run(stream)), loop.create_task(self._pump(peer, stream))]
        stream.inbox.append(frame)
        stream.has_work.set()

    def on_peer_down(self, peer: int) -> None:
        self._ended.pop(peer, None)
        self._end(peer)

    def _tell_closed(self, peer: int, link: int) -> None:
        task = asyncio.get_running_loop().create_task(
            self._channel.send_replies(peer, ppb.ForwardReplies(link=link, closed=True)))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())   # best effort: it may be gone

    def _end(self, peer: int) -> None:
        stream = self._streams.pop(peer, None)
        if stream is not None:
            for task in stream.tasks:
                task.cancel()
            self._node.disconnect(stream.conn)

    async def _run(self, stream: _Stream) -> None:
        """The link's requests, a frame per turn of the loop."""
        node, conn = self._node, stream.conn
        while not conn.closed:
            await stream.has_work.wait()
            stream.has_work.clear()
            while stream.inbox and not conn.closed:
                node.submit_forwarded(conn, stream.inbox.popleft())
                await asyncio.sleep(0)

    async def _pump(self, peer: int, stream: _Stream) -> None:
        node, conn, link = self._node, stream.conn, stream.link
        try:
            while not conn.closed:
                await conn.wake.wait()
                ready = node.take_ready(conn)
                if ready:
                    commit, term = node.replica.commit_hint()
                    await self._channel.send_replies(peer, ppb.ForwardReplies(
                        replies=ready, commit_index=commit, commit_term=term, link=link))
                if conn.close_after_flush and not conn.outbox:
                    return
        except asyncio.CancelledError:
            pass
        except Exception as e:      # the connection broke: the follower finds its link lost
            log.info("answers to node %d lost: %s", peer, str(e) or type(e).__name__)
        finally:
            node.disconnect(conn)
            if self._streams.get(peer) is stream:
                del self._streams[peer]
                for task in stream.tasks:
                    if task is not asyncio.current_task():
                        task.cancel()
                self._ended[peer] = link
                self._tell_closed(peer, link)

    def close(self) -> None:
        for peer in list(self._streams):
            self._end(peer)
