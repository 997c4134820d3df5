"""The peer transport: frame codec bounds, handshake, ordering, requests, reconnect, back-pressure,
and a listener that survives random bytes. Real sockets on 127.0.0.1, no mocks."""
from __future__ import annotations

import asyncio
import logging
import os
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcli_server.listeners.peer_connection import PeerBusy, PeerError, PeerUnreachable, limited
from dcli_server.listeners.peer_frames import (
    HEADER, HEADER_SIZE, KEEP_BUFFER, RECV_BUFFER, ConnectionClosed, Frame, FrameDecoder, FrameError, Kind, encode)
from dcli_server.listeners.peer_stream import open_frame_stream, serve_frames
from dcli_server.listeners.peer_handshake import ClusterSecretHandshake
from dcli_server.listeners.peer_transport import PeerLink, PeerOptions, PeerTransport

DEADLINE_S = 30.0
ECHO, SLOW, FAIL, SEQ, SEEN, SYNC_FAIL = 1, 2, 3, 4, 5, 6


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, DEADLINE_S)
    return asyncio.run(bounded())


async def until(predicate, what: str, deadline_s: float = DEADLINE_S / 2) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


# -- the codec --------------------------------------------------------------------------------------

FRAMES = [Frame(Kind.ONEWAY, 1, 0, b"raft"), Frame(Kind.REQUEST, 2, 7, b"x" * 1000),
          Frame(Kind.RESPONSE, 2, 7, b""), Frame(Kind.ERROR, 2, 8, b"no"), Frame(Kind.PING, 0, 0, b"")]


def test_frames_come_out_as_they_went_in_whole_or_byte_by_byte():
    data = b"".join(encode(f) for f in FRAMES)
    assert FrameDecoder().feed(data) == FRAMES
    decoder = FrameDecoder()
    out = []
    for i in range(len(data)):
        out += decoder.feed(data[i:i + 1])
    assert out == FRAMES
    assert decoder.buffered == 0


def test_an_oversized_length_is_refused_from_the_header_alone():
    decoder = FrameDecoder(max_payload=1000)
    assert decoder.feed(encode(Frame(Kind.ONEWAY, 1, 0, b"y" * 1000)))       # at the limit: fine
    with pytest.raises(FrameError, match="over the limit"):
        decoder.feed(HEADER.pack(1001, Kind.ONEWAY, 1, 0))
    with pytest.raises(FrameError, match="over the limit"):
        FrameDecoder().feed(HEADER.pack(0xFFFFFFFF, Kind.REQUEST, 1, 1))


def test_receiving_into_the_decoder_grows_it_for_a_checked_frame_only_and_shrinks_it_after():
    def receive(decoder, data):
        while data:
            room = decoder.get_buffer()
            n = min(len(room), len(data))
            room[:n] = data[:n]
            decoder.buffer_updated(n)
            data = data[n:]

    decoder = FrameDecoder(max_payload=1000)
    receive(decoder, HEADER.pack(1 << 30, Kind.ONEWAY, 1, 0))
    with pytest.raises(FrameError, match="over the limit"):
        decoder.next()
    assert len(decoder.get_buffer()) <= RECV_BUFFER              # nothing was grown for it

    decoder = FrameDecoder(max_payload=KEEP_BUFFER * 2)
    frames = [Frame(Kind.ONEWAY, 1, 0, b"a" * 10), Frame(Kind.REQUEST, 2, 5, os.urandom(KEEP_BUFFER + 1)),
              Frame(Kind.RESPONSE, 2, 5, b"b")]
    data = b"".join(encode(f) for f in frames)
    out = []
    for i in range(0, len(data), 1 << 20):                         # a receive at a time, as the loop does
        receive(decoder, data[i:i + (1 << 20)])
        while (f := decoder.next()) is not None:
            out.append(f)
    assert out == frames
    assert len(decoder.get_buffer()) <= RECV_BUFFER              # the big frame's room was given back


def test_a_limit_raised_between_two_frames_applies_to_the_second_even_in_one_read():
    hello = encode(Frame(Kind.HELLO, 0, 0, b"h" * 29))
    big = encode(Frame(Kind.ONEWAY, 1, 0, b"r" * 100_000))
    decoder = FrameDecoder(max_payload=4096)
    decoder.append(hello + big)                  # the peer's proof and its first message together
    assert decoder.next() == Frame(Kind.HELLO, 0, 0, b"h" * 29)
    decoder.max_payload = 1 << 20
    assert decoder.next() == Frame(Kind.ONEWAY, 1, 0, b"r" * 100_000)
    assert decoder.next() is None and decoder.buffered == 0


def test_a_truncated_frame_waits_and_an_end_inside_it_is_a_closed_connection():
    data = encode(Frame(Kind.REQUEST, 3, 1, b"z" * 100))
    decoder = FrameDecoder()
    assert decoder.feed(data[:HEADER_SIZE + 50]) == []
    assert decoder.wanted() == 50
    assert decoder.feed(data[HEADER_SIZE + 50:]) == [Frame(Kind.REQUEST, 3, 1, b"z" * 100)]

    async def scenario():
        async def cut_short(stream):
            stream.write_raw(data[:HEADER_SIZE + 10])
            stream.close_soon()
        server = await serve_frames(cut_short, "127.0.0.1", 0)
        try:
            stream = await open_frame_stream("127.0.0.1", server.sockets[0].getsockname()[1])
            with pytest.raises(ConnectionClosed, match="inside a frame"):
                await stream.read()
            await stream.close()
        finally:
            server.close()
    run(scenario())


@pytest.mark.parametrize("kind", [0, 9, 99, 255])
def test_an_unknown_kind_is_refused(kind):
    with pytest.raises(FrameError, match="unknown frame kind"):
        FrameDecoder().feed(struct.pack(">IBHQ", 3, kind, 1, 0) + b"abc")
    with pytest.raises(FrameError):
        encode(Frame(kind, 1, 0, b""))


@pytest.mark.parametrize("kind,id_", [(Kind.REQUEST, 0), (Kind.RESPONSE, 0), (Kind.ERROR, 0), (Kind.BUSY, 0),
                                      (Kind.ONEWAY, 5), (Kind.HELLO, 1), (Kind.PING, 2)])
def test_an_id_that_does_not_fit_the_kind_is_refused(kind, id_):
    with pytest.raises(FrameError):
        FrameDecoder().feed(HEADER.pack(0, kind, 1, id_))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_garbage_yields_valid_frames_or_a_frame_error_and_nothing_above_the_limit(chunks):
    decoder = FrameDecoder(max_payload=32)
    try:
        for chunk in chunks:
            for f in decoder.feed(chunk):
                assert f.kind in set(Kind) and len(f.payload) <= 32
    except FrameError:
        pass
    assert decoder.buffered <= HEADER_SIZE + 32 + 64


# -- two transports on 127.0.0.1 ------------------------------------------------------------------

async def pair(secret=b"s3cret", options=PeerOptions(), secret2=None):
    """Node 1 (dials) and node 2 (listens), connected; both echo, count and record."""
    got: dict[int, list] = {1: [], 2: []}
    nodes = []
    for node_id, s in ((1, secret), (2, secret2 if secret2 is not None else secret)):
        t = PeerTransport(ClusterSecretHandshake(node_id, cluster_id=9, secret=s), options=options)
        t.handle_message(SEQ, lambda peer, payload, n=node_id: got[n].append((peer, payload)))

        async def echo(peer, payload, n=node_id):
            return b"%d:" % n + payload

        async def slow(peer, payload):
            await asyncio.sleep(int(payload) / 1000)
            return payload

        async def fail(peer, payload):
            raise ValueError("the handler says no")

        def fail_at_once(peer, payload):
            raise KeyError("no such key")

        t.handle_request(ECHO, echo)
        t.handle_request(SEEN, lambda peer, payload, n=node_id: b"%d" % len(got[n]))   # a plain function
        t.handle_request(SYNC_FAIL, fail_at_once)
        t.handle_request(SLOW, slow)
        t.handle_request(FAIL, fail)
        await t.listen("127.0.0.1", 0)
        nodes.append(t)
    one, two = nodes
    one.add_peer(2, f"127.0.0.1:{two.port}")
    two.add_peer(1, f"127.0.0.1:{one.port}")
    return one, two, got


def test_one_connection_carries_both_directions_in_order():
    async def scenario():
        one, two, got = await pair()
        try:
            assert one._links[2].dials and not two._links[1].dials
            await until(lambda: one.reachable(2) and two.reachable(1), "the connection")
            for i in range(3000):
                await one.send(2, SEQ, b"%d" % i)
                two.post(1, SEQ, b"%d" % i)                     # may drop when full, never reorders
            await until(lambda: len(got[2]) >= 3000, "node 2 to get 3000 messages")
            seqs = [int(p) for _, p in got[2]]
            assert seqs == list(range(3000))
            assert {peer for peer, _ in got[2]} == {1}
            await until(lambda: len(got[1]) > 0, "node 1 to hear from node 2")
            back = [int(p) for _, p in got[1]]
            assert back == sorted(back)
            # node 2 never dialled: its request to node 1 travels on node 1's connection
            assert await two.request(1, ECHO, b"hi", timeout=10) == b"1:hi"
            local = one._links[2].connection.stream.get_extra_info("sockname")
            remote = two._links[1].connection.stream.get_extra_info("peername")
            assert local == remote
        finally:
            await one.close()
            await two.close()
    run(scenario())


def test_requests_find_their_answers_errors_and_timeouts():
    async def scenario():
        one, two, _ = await pair()
        try:
            assert await one.request(2, ECHO, b"a", timeout=10) == b"2:a"
            delays = [200, 5, 120, 0, 60, 30]
            answers = await asyncio.gather(*(one.request(2, SLOW, b"%d" % d, timeout=10) for d in delays))
            assert answers == [b"%d" % d for d in delays]
            with pytest.raises(PeerError, match="the handler says no"):
                await one.request(2, FAIL, b"", timeout=10)
            with pytest.raises(PeerError, match="no handler for method 77"):
                await one.request(2, 77, b"", timeout=10)
            with pytest.raises(PeerUnreachable, match="no answer"):
                await one.request(2, SLOW, b"5000", timeout=0.05)
            # a plain-function handler answers in the reader, in order with the one-way messages
            for i in range(5):
                await one.send(2, SEQ, b"m")
                assert await one.request(2, SEEN, b"", timeout=10) == b"%d" % (i + 1)
            with pytest.raises(PeerError, match="no such key"):
                await one.request(2, SYNC_FAIL, b"", timeout=10)
            with pytest.raises(PeerUnreachable, match="not a known peer"):
                await one.request(3, ECHO, b"", timeout=1)
            assert await one.request(2, ECHO, b"still", timeout=10) == b"2:still"
        finally:
            await one.close()
            await two.close()
    run(scenario())


def test_a_peer_stays_while_any_user_holds_it():
    """Raft's membership and the KV ring register peers on the same transport: one user's
    removal does not cut the link another still needs, and the last removal does."""
    async def scenario():
        one, two, _ = await pair()          # registered by the default user
        try:
            address = one.peers()[2]
            one.add_peer(2, address, user="kv")
            assert one.users(2) == ["", "kv"]
            await until(lambda: one.reachable(2), "the connection")
            link = one._links[2]
            one.remove_peer(2)              # the first user lets go: the link stays, not redialled
            one.remove_peer(2, user="raft")     # a user that never held it changes nothing
            assert one._links.get(2) is link and one.users(2) == ["kv"]
            assert await one.request(2, ECHO, b"kept", timeout=10) == b"2:kept"
            one.remove_peer(2, user="kv")
            assert 2 not in one.peers() and one.users(2) == []
            with pytest.raises(PeerUnreachable, match="not a known peer"):
                await one.request(2, ECHO, b"", timeout=1)
            one.add_peer(2, address, user="kv")
            assert await one.request(2, ECHO, b"back", timeout=10) == b"2:back"
        finally:
            await one.close()
            await two.close()
    run(scenario())


def test_a_wrong_secret_or_cluster_is_refused():
    async def scenario():
        one, two, _ = await pair(secret=b"right", secret2=b"wrong")
        try:
            with pytest.raises(PeerUnreachable):
                await one.request(2, ECHO, b"", timeout=0.5)
            assert not one.reachable(2) and not two.reachable(1)
        finally:
            await one.close()
            await two.close()
        other = PeerTransport(ClusterSecretHandshake(5, cluster_id=10))
        mine = PeerTransport(ClusterSecretHandshake(4, cluster_id=9))
        await other.listen()
        try:
            mine.add_peer(5, f"127.0.0.1:{other.port}")
            with pytest.raises(PeerUnreachable):
                await mine.request(5, ECHO, b"", timeout=0.5)
            await until(lambda: other.refused > 0, "the other cluster's node to refuse")
        finally:
            await mine.close()
            await other.close()
        # the right cluster, but not the node this address was given for
        six = PeerTransport(ClusterSecretHandshake(6, cluster_id=9))
        await six.listen()
        try:
            mine = PeerTransport(ClusterSecretHandshake(4, cluster_id=9))
            mine.add_peer(7, f"127.0.0.1:{six.port}")
            with pytest.raises(PeerUnreachable):
                await mine.request(7, ECHO, b"", timeout=0.5)
            assert not mine.reachable(7) and not six.reachable(4)
        finally:
            await mine.close()
            await six.close()
    run(scenario())


def test_reconnects_after_the_other_side_closes_and_after_it_restarts():
    async def scenario():
        options = PeerOptions(backoff_max_s=0.2)
        one, two, _ = await pair(options=options)
        port = two.port
        try:
            assert await one.request(2, ECHO, b"1", timeout=10) == b"2:1"
            first = one._links[2].connection
            waiting = asyncio.ensure_future(one.request(2, SLOW, b"600000", timeout=600))
            await until(lambda: two._links[1].connection._handlers, "the slow request to arrive")
            two._links[1].connection.abort("test drops it")            # the accepting side hangs up
            with pytest.raises(PeerUnreachable):
                await waiting                                         # its outcome is unknown
            assert await one.request(2, ECHO, b"2", timeout=10) == b"2:2"
            assert one._links[2].connection is not first

            await two.close()                                         # the whole node goes
            await until(lambda: not one.reachable(2), "node 1 to see node 2 gone")
            with pytest.raises(PeerUnreachable):
                await one.request(2, ECHO, b"", timeout=0.3)
            again = PeerTransport(ClusterSecretHandshake(2, cluster_id=9, secret=b"s3cret"), options=options)

            async def echo(peer, payload):
                return b"again:" + payload
            again.handle_request(ECHO, echo)
            await again.listen("127.0.0.1", port)
            try:
                assert await one.request(2, ECHO, b"3", timeout=10) == b"again:3"
            finally:
                await again.close()
        finally:
            await one.close()
            await two.close()
    run(scenario())


def test_connections_broken_under_traffic_lose_only_what_was_in_flight_and_never_reorder():
    async def scenario():
        one, two, got = await pair(options=PeerOptions(backoff_min_s=0.01, backoff_max_s=0.05))
        done, lost, breaks = [0], [0], [0]
        crossed = asyncio.Event()

        async def worker(w: int) -> None:
            for i in range(300):
                try:
                    payload = b"%d-%d" % (w, i)
                    assert await one.request(2, ECHO, payload, timeout=20) == b"2:" + payload
                    done[0] += 1
                    if done[0] % 100 == 0:
                        crossed.set()
                except PeerUnreachable:
                    lost[0] += 1

        async def breaker() -> None:
            while True:
                await crossed.wait()
                crossed.clear()
                conn = two._links[1].connection
                if conn is not None:
                    conn.abort("broken by the test")
                    breaks[0] += 1

        async def poster() -> None:
            for i in range(20_000):
                one.post(2, SEQ, b"%d" % i)             # dropped while down or full, never reordered
                if i % 50 == 0:
                    await asyncio.sleep(0)

        breaking = asyncio.ensure_future(breaker())
        try:
            await asyncio.gather(poster(), *(worker(w) for w in range(4)))
            breaking.cancel()
            assert done[0] + lost[0] == 1200
            assert breaks[0] >= 5
            assert lost[0] <= 4 * breaks[0]             # at most one in flight per worker at each break
            await until(lambda: one.reachable(2), "the last reconnect")
            seqs = [int(p) for _, p in got[2]]
            assert seqs and all(a < b for a, b in zip(seqs, seqs[1:]))
        finally:
            breaking.cancel()
            await one.close()
            await two.close()
    run(scenario())


async def silent_peer(read: asyncio.Event, got: list, secret=b"s3cret"):
    """A node 2 that completes the handshake, then reads nothing until `read` is set."""
    async def accept(stream):
        await ClusterSecretHandshake(2, cluster_id=9, secret=secret).accept(stream)
        stream.decoder.max_payload = 64 << 20
        await read.wait()
        try:
            while True:
                f = await stream.read()
                if f.kind == Kind.ONEWAY:
                    got.append(f.payload[:8])
        except ConnectionClosed:
            pass
    return await serve_frames(accept, "127.0.0.1", 0)


def test_a_peer_that_does_not_read_makes_send_wait_and_post_drop():
    async def scenario():
        read, got = asyncio.Event(), []
        server = await silent_peer(read, got)
        link = PeerLink(2, "127.0.0.1:%d" % server.sockets[0].getsockname()[1],
                        ClusterSecretHandshake(1, cluster_id=9, secret=b"s3cret"),
                        options=PeerOptions(queue_limit=4, dead_after_s=60))
        link.start()
        try:
            assert await link.wait_connected(10)
            big = os.urandom(1 << 20)
            sent = 0

            async def sender():
                nonlocal sent
                for i in range(200):                       # 200 MiB: more than any socket buffers
                    await link.send(SEQ, i.to_bytes(8, "big") + big)
                    sent += 1
            task = asyncio.ensure_future(sender())
            await until(lambda: link.connection._queue.full(), "the send queue to fill")
            stuck_at = sent
            for _ in range(200):
                await asyncio.sleep(0)
            assert sent == stuck_at < 200 and not task.done()
            assert link.post(SEQ, b"dropped") is False
            read.set()                                     # the peer reads again: everything flows
            await task
            await until(lambda: len(got) == 200, "the peer to read all 200")
            assert [int.from_bytes(p, "big") for p in got] == list(range(200))
        finally:
            await link.close()
            server.close()
            await server.wait_closed()
    run(scenario())


def test_beyond_max_handlers_a_request_is_busy_and_the_stream_keeps_flowing():
    async def scenario():
        one, two, got = await pair(options=PeerOptions(max_handlers=2))
        release, running = asyncio.Event(), []

        async def held(peer, payload):
            running.append(payload)
            await release.wait()
            return payload
        two.handle_request(9, held)
        try:
            calls = [asyncio.ensure_future(one.request(2, 9, b"%d" % i, timeout=20)) for i in range(2)]
            await until(lambda: len(running) == 2, "two handlers to start")
            with pytest.raises(PeerBusy):
                await one.request(2, 9, b"third", timeout=20)
            # node 2's handlers are all taken, yet it still reads: answers to its own requests
            # (a handler calling back the peer that called it cannot deadlock) and one-way messages
            assert await two.request(1, ECHO, b"back", timeout=10) == b"1:back"
            await one.send(2, SEQ, b"one-way")
            await until(lambda: got[2] == [(1, b"one-way")], "the one-way message")
            assert running == [b"0", b"1"]
            release.set()
            assert await asyncio.gather(*calls) == [b"0", b"1"]
            assert await one.request(2, 9, b"later", timeout=10) == b"later"
        finally:
            await one.close()
            await two.close()
    run(scenario())


def test_payloads_over_the_limit_and_answers_that_are_not_bytes_are_refused_not_sent():
    async def scenario():
        one, two, _ = await pair(options=PeerOptions(max_payload=1000))

        async def wrong(peer, payload):
            return {"not": "bytes"} if payload == b"dict" else b"x" * 1001
        two.handle_request(9, wrong)
        try:
            with pytest.raises(ValueError, match="over the limit"):
                await one.request(2, ECHO, b"y" * 1001, timeout=10)
            with pytest.raises(ValueError, match="over the limit"):
                one.post(2, SEQ, b"y" * 1001)
            with pytest.raises(PeerError, match="returned dict, not bytes"):
                await one.request(2, 9, b"dict", timeout=10)
            with pytest.raises(PeerError, match="over the limit"):
                await one.request(2, 9, b"big", timeout=10)
            connection = one._links[2].connection
            assert await one.request(2, ECHO, b"y" * 998, timeout=10) == b"2:" + b"y" * 998
            assert one._links[2].connection is connection         # none of it cost the connection
        finally:
            await one.close()
            await two.close()
    run(scenario())


def test_a_silent_peer_is_declared_dead_and_close_flushes_what_is_queued():
    async def scenario():
        read, got = asyncio.Event(), []
        server = await silent_peer(read, got)
        address = "127.0.0.1:%d" % server.sockets[0].getsockname()[1]
        link = PeerLink(2, address, ClusterSecretHandshake(1, cluster_id=9, secret=b"s3cret"),
                        options=PeerOptions(keepalive_s=0.05, dead_after_s=0.3, backoff_min_s=5, backoff_max_s=5))
        link.start()
        try:
            assert await link.wait_connected(10)
            await until(lambda: not link.connected, "the silent peer to be declared dead")
        finally:
            await link.close()
        read.set()
        link = PeerLink(2, address, ClusterSecretHandshake(1, cluster_id=9, secret=b"s3cret"))
        link.start()
        try:
            assert await link.wait_connected(10)
            for i in range(1000):
                assert link.post(SEQ, i.to_bytes(8, "big"))
        finally:
            await link.close()
        await until(lambda: len(got) == 1000, "all 1000 posted messages")
        server.close()
        await server.wait_closed()
    run(scenario())


def test_the_listener_survives_random_bytes_and_serves_a_good_peer_after(caplog):
    """300 connections of junk: 100 random, 100 a parsable header then random, 100 a complete
    authenticated handshake (as nodes 2-8) then random. The listener (node 9) refuses or closes
    each with rate-limited lines, no traceback, and its good peer (node 1) is served throughout."""
    caplog.set_level(logging.INFO, logger="dcli.server.peer")
    limited.clear()                         # earlier tests' lines must not hold back this one's
    rng = random.Random(20261207)
    ups: list[int] = []

    async def junk_after_handshake(port: int, node_id: int, junk: bytes, abort: bool) -> None:
        stream = await open_frame_stream("127.0.0.1", port)
        await ClusterSecretHandshake(node_id, cluster_id=9, secret=b"k").dial(stream, expect=9)
        stream.write_raw(junk)
        await stream.drain()
        stream.abort() if abort else stream.close_soon()

    async def scenario():
        nine = PeerTransport(ClusterSecretHandshake(9, cluster_id=9, secret=b"k"),
                             on_state=lambda peer, up: up and peer != 1 and ups.append(peer))

        async def echo(peer, payload):
            return b"9:" + payload
        nine.handle_request(ECHO, echo)
        await nine.listen()
        one = PeerTransport(ClusterSecretHandshake(1, cluster_id=9, secret=b"k"))
        one.add_peer(9, f"127.0.0.1:{nine.port}")
        try:
            assert await one.request(9, ECHO, b"before", timeout=10) == b"9:before"
            for i in range(300):
                junk = rng.randbytes(rng.randrange(1, 2000))
                if i % 3 == 2:
                    if i % 4 == 0:                  # a header that parses, with a random kind, then more
                        junk = HEADER.pack(rng.randrange(0, 1 << 20), rng.choice(list(Kind)), 0,
                                           rng.choice((0, 1))) + junk
                    await junk_after_handshake(nine.port, 2 + i % 7, junk, abort=i % 2 == 1)
                    continue
                _, writer = await asyncio.open_connection("127.0.0.1", nine.port)
                if i % 3 == 1:                      # a header that parses, then nonsense
                    junk = HEADER.pack(rng.randrange(0, 5000), rng.choice(list(Kind)), 0, 0) + junk
                writer.write(junk)
                writer.transport.abort() if i % 2 else writer.close()
            await until(lambda: nine.refused == 200, "the listener to refuse the 200 unauthenticated")
            await until(lambda: len(ups) == 100 and not any(nine.reachable(n) for n in range(2, 9)),
                        "the 100 authenticated junk connections to be closed")
            assert await one.request(9, ECHO, b"after", timeout=10) == b"9:after"
            fresh = PeerTransport(ClusterSecretHandshake(1, cluster_id=9, secret=b"k"))
            fresh.add_peer(9, f"127.0.0.1:{nine.port}")
            try:
                assert await fresh.request(9, ECHO, b"new", timeout=10) == b"9:new"
            finally:
                await fresh.close()
        finally:
            await one.close()
            await nine.close()
    run(scenario())
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("bad frame" in w for w in warnings), "no junk got past the handshake"
    assert any("refused" in w for w in warnings)
    assert len(warnings) < 30, f"not rate-limited: {len(warnings)} lines"
