"""Peer transport benchmark: gRPC streaming, gRPC unary and length-prefixed frames, side by side.

Two peers on 127.0.0.1 in separate processes (a client process and a server process), so each
side's CPU time is its own (`time.process_time` of the whole process, gRPC's threads included).
Payloads are plain bytes on every transport (no protobuf): this measures the transport alone.

transports
    grpc-stream   one gRPC aio bidi stream (generic handler, bytes in and out)
    grpc-unary    one gRPC aio unary call per message
    frames        asyncio streams, 15-byte header + payload (server/listeners/peer_frames.py)
    frames-buf    the same frames received by an asyncio.BufferedProtocol straight into the
                  decoder's buffer (server/listeners/peer_stream.py)
    peer-conn     PeerTransport over the same frames (server/listeners/peer_transport.py):
                  handshake, request ids, send queue; the server's handler a plain function,
                  answered in the reader
    peer-async    the same with a coroutine handler: one task per request on the server
scenarios
    pingpong      100-byte request, 100-byte answer, one at a time: latency per round trip
    oneway        100-byte messages sent back to back, no answers (gRPC unary: 64 calls in flight)
    fetch-64k     a small request, a 64 KiB answer, one at a time (a follower's fetch)
    fetch-1m      the same with 1 MiB answers

    .venv/bin/python benchmarks/peer_transport.py                    # 3 rounds, ~2 s per scenario
    .venv/bin/python benchmarks/peer_transport.py --repeat 5 --seconds 3 --json /tmp/peer.json

Each round runs every transport (in a rotating order) through every scenario, with fresh
processes; the table shows the median over rounds. Every loop stops at a message count or
after --seconds, whichever comes first. The event loop is asyncio's own (uvloop is not used).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dcli_server.listeners import peer_frames as pf  # noqa: E402

TRANSPORTS = ("grpc-stream", "grpc-unary", "frames", "frames-buf", "peer-conn", "peer-async")
SCENARIOS = ("pingpong", "oneway", "fetch-64k", "fetch-1m")
SMALL = 100
LIMITS = {"pingpong": 20_000, "oneway": 300_000, "fetch-64k": 5_000, "fetch-1m": 500}
FETCH_SIZE = {"fetch-64k": 64 << 10, "fetch-1m": 1 << 20}
UNARY_IN_FLIGHT = 64
GRPC_OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
METHOD = 1

# what a message asks of the server: its first byte
PING, ONE, DONE, FETCH = b"P", b"O", b"D", b"F"


class Counter:
    """The server's state: one-way messages seen, cached fetch answers."""

    def __init__(self) -> None:
        self.seen = 0
        self._big: dict[int, bytes] = {}

    def answer(self, msg: bytes) -> bytes | None:
        op = msg[:1]
        if op == ONE:
            self.seen += 1
            return None
        if op == PING:
            return msg
        if op == DONE:
            seen, self.seen = self.seen, 0
            return str(seen).encode()
        if op == FETCH:
            size = int.from_bytes(msg[1:5], "big")
            big = self._big.get(size)
            if big is None:
                big = self._big[size] = os.urandom(size)
            return big
        raise ValueError(f"unknown op {op!r}")


# -- servers ---------------------------------------------------------------------------------------

async def serve_grpc(counter: Counter) -> int:
    import grpc

    async def stream(requests, context):
        async for msg in requests:
            out = counter.answer(msg)
            if out is not None:
                yield out

    async def unary(msg, context):
        out = counter.answer(msg)
        return b"" if out is None else out

    server = grpc.aio.server(options=GRPC_OPTIONS)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Peer", {
        "Stream": grpc.stream_stream_rpc_method_handler(stream),
        "Call": grpc.unary_unary_rpc_method_handler(unary)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    serve_grpc.server = server
    return port


class StreamFrames:
    """Frames over asyncio's streams (StreamReader, StreamWriter), cut by the same decoder."""

    LIMIT = 1 << 20                 # StreamReader pauses the socket at twice this

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.decoder = pf.FrameDecoder(pf.MAX_PAYLOAD)
        writer.transport.set_write_buffer_limits(high=1 << 20)

    async def read(self) -> pf.Frame:
        while (frame := self.decoder.next()) is None:
            data = await self.reader.read(max(256 << 10, self.decoder.wanted()))
            if not data:
                raise pf.ConnectionClosed("end of stream")
            self.decoder.append(data)
        return frame

    def write(self, f: pf.Frame) -> None:
        self.writer.writelines((pf.header(f.kind, f.method, f.id, len(f.payload)), f.payload))

    async def drain(self) -> None:
        await self.writer.drain()

    def close_soon(self) -> None:
        self.writer.close()


async def answer_frames(counter: Counter, stream) -> None:
    try:
        while True:
            f = await stream.read()
            out = counter.answer(f.payload)
            if f.kind == pf.Kind.REQUEST:
                stream.write(pf.Frame(pf.Kind.RESPONSE, f.method, f.id, out or b""))
                await stream.drain()
    except pf.ConnectionClosed:
        pass
    finally:
        stream.close_soon()


async def serve_frames(counter: Counter) -> int:
    server = await asyncio.start_server(lambda r, w: answer_frames(counter, StreamFrames(r, w)), "127.0.0.1", 0,
                                        limit=StreamFrames.LIMIT)
    serve_frames.server = server
    return server.sockets[0].getsockname()[1]


async def serve_frames_buf(counter: Counter) -> int:
    from dcli_server.listeners.peer_stream import serve_frames as serve

    async def on_stream(stream):
        stream.decoder.max_payload = pf.MAX_PAYLOAD
        await answer_frames(counter, stream)
    server = await serve(on_stream, "127.0.0.1", 0)
    serve_frames.server = server
    return server.sockets[0].getsockname()[1]


async def serve_peer_conn(counter: Counter, in_task: bool = False) -> int:
    from dcli_server.listeners.peer_handshake import ClusterSecretHandshake
    from dcli_server.listeners.peer_transport import PeerTransport

    def answer(peer, payload):
        return counter.answer(payload) or b""

    async def answer_in_task(peer, payload):
        return counter.answer(payload) or b""

    transport = PeerTransport(ClusterSecretHandshake(node_id=2, secret=b"bench"))
    transport.handle_message(METHOD, lambda peer, payload: counter.answer(payload))
    transport.handle_request(METHOD, answer_in_task if in_task else answer)
    serve_peer_conn.transport = transport
    return await transport.listen("127.0.0.1", 0)


def settle_malloc() -> None:
    """Free one large block so glibc raises its mmap threshold now, in every process alike.

    asyncio receives into a fresh 256 KiB bytes object per recv. Until glibc has freed an mmap'd
    block larger than its threshold (128 KiB at start), each of those is an mmap, an mremap and
    a munmap plus page faults: 40-100 us per 64 KiB message here. A long-running server frees
    some large block early on; in a fresh benchmark process it is luck, and it decided which
    transport looked faster in the first runs.
    """
    block = bytearray(4 << 20)
    del block


def control_thread(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """stdin commands from the driver: `cpu` prints this process's CPU seconds; `quit`."""
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "cpu":
            print(f"{time.process_time():.6f}", flush=True)
        elif cmd == "quit":
            break
    loop.call_soon_threadsafe(stop.set)


async def server_main(transport: str) -> None:
    settle_malloc()
    counter = Counter()
    start = {"grpc-stream": serve_grpc, "grpc-unary": serve_grpc, "frames": serve_frames,
             "frames-buf": serve_frames_buf,
             "peer-conn": serve_peer_conn,
             "peer-async": lambda c: serve_peer_conn(c, in_task=True)}[transport]
    port = await start(counter)
    print(f"port {port}", flush=True)
    stop = asyncio.Event()
    threading.Thread(target=control_thread, args=(asyncio.get_running_loop(), stop), daemon=True).start()
    await stop.wait()
    if transport.startswith("grpc"):
        await serve_grpc.server.stop(None)
    elif transport.startswith("peer"):
        await serve_peer_conn.transport.close()
    else:
        serve_frames.server.close()


# -- clients: one `call` (request, answer) and one `send` (one-way) per transport -------------------

class GrpcStreamClient:
    async def open(self, port: int) -> None:
        import grpc
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS)
        self.call = self.channel.stream_stream("/bench.Peer/Stream")()

    async def call_(self, msg: bytes) -> bytes:
        await self.call.write(msg)
        return await self.call.read()

    async def send(self, msg: bytes) -> None:
        await self.call.write(msg)

    async def flush(self) -> None:
        pass


class GrpcUnaryClient:
    async def open(self, port: int) -> None:
        import grpc
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS)
        self.method = self.channel.unary_unary("/bench.Peer/Call")
        self.in_flight: list = []

    async def call_(self, msg: bytes) -> bytes:
        return await self.method(msg)

    async def send(self, msg: bytes) -> None:
        self.in_flight.append(self.method(msg))
        if len(self.in_flight) >= UNARY_IN_FLIGHT:
            await self.flush()

    async def flush(self) -> None:
        calls, self.in_flight = self.in_flight, []
        for c in calls:
            await c


class FramesClient:
    async def open(self, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=StreamFrames.LIMIT)
        self.stream = StreamFrames(reader, writer)
        self.next_id = 0

    async def call_(self, msg: bytes) -> bytes:
        self.next_id += 1
        self.stream.write(pf.Frame(pf.Kind.REQUEST, METHOD, self.next_id, msg))
        await self.stream.drain()
        f = await self.stream.read()
        assert f.id == self.next_id
        return f.payload

    async def send(self, msg: bytes) -> None:
        self.stream.write(pf.Frame(pf.Kind.ONEWAY, METHOD, 0, msg))
        await self.stream.drain()

    async def flush(self) -> None:
        pass


class BufFramesClient(FramesClient):
    async def open(self, port: int) -> None:
        from dcli_server.listeners.peer_stream import open_frame_stream
        self.stream = await open_frame_stream("127.0.0.1", port, pf.MAX_PAYLOAD)
        self.next_id = 0


class PeerConnClient:
    async def open(self, port: int) -> None:
        from dcli_server.listeners.peer_handshake import ClusterSecretHandshake
        from dcli_server.listeners.peer_transport import PeerTransport
        self.transport = PeerTransport(ClusterSecretHandshake(node_id=1, secret=b"bench"))
        self.transport.add_peer(2, f"127.0.0.1:{port}")
        self.transport.handle_message(METHOD, lambda peer, payload: None)
        if not await self.transport.wait_connected(2, 10):
            raise SystemExit("peer-conn: no connection")

    async def call_(self, msg: bytes) -> bytes:
        return await self.transport.request(2, METHOD, msg, timeout=30)

    async def send(self, msg: bytes) -> None:
        await self.transport.send(2, METHOD, msg)

    async def flush(self) -> None:
        pass


CLIENTS = {"grpc-stream": GrpcStreamClient, "grpc-unary": GrpcUnaryClient, "frames": FramesClient,
           "frames-buf": BufFramesClient, "peer-conn": PeerConnClient, "peer-async": PeerConnClient}


async def run_scenario(client, scenario: str, seconds: float, warm: bool) -> dict:
    limit = LIMITS[scenario] // (20 if warm else 1)
    seconds = seconds / 10 if warm else seconds
    cpu0, t0 = time.process_time(), time.perf_counter()
    deadline = t0 + seconds
    result: dict = {}
    if scenario == "pingpong":
        msg = PING + b"x" * (SMALL - 1)
        rtts = []
        for i in range(limit):
            s = time.perf_counter_ns()
            answer = await client.call_(msg)
            rtts.append(time.perf_counter_ns() - s)
            assert len(answer) == SMALL
            if i % 256 == 0 and time.perf_counter() > deadline:
                break
        n = len(rtts)
        rtts.sort()
        result.update(median_us=rtts[n // 2] / 1000, p99_us=rtts[min(n - 1, n * 99 // 100)] / 1000)
    elif scenario == "oneway":
        msg = ONE + b"x" * (SMALL - 1)
        n = 0
        while n < limit:
            for _ in range(1024):
                await client.send(msg)
            n += 1024
            if time.perf_counter() > deadline:
                break
        await client.flush()
        seen = int(await client.call_(DONE))
        assert seen == n, (seen, n)
    else:
        size = FETCH_SIZE[scenario]
        msg = FETCH + size.to_bytes(4, "big")
        n = 0
        while n < limit:
            answer = await client.call_(msg)
            assert len(answer) == size
            n += 1
            if time.perf_counter() > deadline:
                break
        result["mb_s"] = n * size / (time.perf_counter() - t0) / 1e6
    elapsed = time.perf_counter() - t0
    result.update(n=n, elapsed=elapsed, per_s=n / elapsed, client_cpu=time.process_time() - cpu0)
    return result


async def client_main(transport: str, port: int, seconds: float) -> None:
    settle_malloc()
    client = CLIENTS[transport]()
    await client.open(port)
    loop = asyncio.get_running_loop()
    while True:                          # `run SCENARIO`, `go`, `quit`: one at a time from the driver
        cmd = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not cmd or cmd[0] == "quit":
            break
        await run_scenario(client, cmd[1], seconds, warm=True)
        print("warm", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)       # "go"
        print(json.dumps(await run_scenario(client, cmd[1], seconds, warm=False)), flush=True)


# -- the driver --------------------------------------------------------------------------------------

def readline(proc: subprocess.Popen, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise SystemExit(f"no answer from pid {proc.pid} within {timeout:.0f} s")
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"pid {proc.pid} exited ({proc.poll()})")
    return line.strip()


def tell(proc: subprocess.Popen, line: str) -> None:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            tell(proc, "quit")
            proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def one_round(transport: str, scenarios, seconds: float) -> dict[str, dict]:
    server = spawn("--role", "server", "--transport", transport)
    client = None
    out = {}
    try:
        port = readline(server, 30).split()[1]
        client = spawn("--role", "client", "--transport", transport, "--port", port, "--seconds", str(seconds))
        for scenario in scenarios:
            tell(client, f"run {scenario}")
            if readline(client, seconds * 10 + 30) != "warm":
                raise SystemExit(f"{transport} {scenario}: the client did not warm up")
            tell(server, "cpu")
            cpu0 = float(readline(server, 30))
            tell(client, "go")
            r = json.loads(readline(client, seconds * 10 + 30))
            tell(server, "cpu")
            r["server_cpu"] = float(readline(server, 30)) - cpu0
            out[scenario] = r
    finally:
        if client is not None:
            stop(client)
        stop(server)
    return out


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def table(results: dict[str, dict[str, list[dict]]], transports, scenarios) -> str:
    rows = [("scenario", "transport", "rate", "median", "p99", "cli us/msg", "srv us/msg", "rate x", "cpu x")]
    for scenario in scenarios:
        base = results.get("grpc-stream", {}).get(scenario)
        for t in transports:
            runs = results[t][scenario]
            # per message: a round trip (pingpong, fetch) or one message (oneway), each side
            cli = statistics.median(r["client_cpu"] / r["n"] * 1e6 for r in runs)
            srv = statistics.median(r["server_cpu"] / r["n"] * 1e6 for r in runs)
            if scenario.startswith("fetch"):
                rate = f"{median_of(runs, 'mb_s'):.0f} MB/s"
            else:
                rate = f"{median_of(runs, 'per_s'):,.0f}/s"
            median = f"{median_of(runs, 'median_us'):.0f} us" if scenario == "pingpong" else ""
            p99 = f"{median_of(runs, 'p99_us'):.0f} us" if scenario == "pingpong" else ""
            ratio = cpu_ratio = ""
            if base:
                ratio = f"{median_of(runs, 'per_s') / median_of(base, 'per_s'):.2f}"
                base_cpu = statistics.median((r["client_cpu"] + r["server_cpu"]) / r["n"] for r in base)
                cpu = statistics.median((r["client_cpu"] + r["server_cpu"]) / r["n"] for r in runs)
                cpu_ratio = f"{cpu / base_cpu:.2f}"
            rows.append((scenario, t, rate, median, p99, f"{cli:.1f}", f"{srv:.1f}", ratio, cpu_ratio))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the table shows medians (default 3)")
    ap.add_argument("--seconds", type=float, default=2.0, help="limit per scenario per round (default 2)")
    ap.add_argument("--transports", default=",".join(TRANSPORTS))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--json", help="write every run's figures to this file")
    ap.add_argument("--role", choices=("server", "client"), help=argparse.SUPPRESS)
    ap.add_argument("--transport", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "server":
        asyncio.run(server_main(args.transport))
        return
    if args.role == "client":
        asyncio.run(client_main(args.transport, args.port, args.seconds))
        return
    transports = [t for t in args.transports.split(",") if t]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for t in transports:
        if t not in TRANSPORTS:
            ap.error(f"unknown transport {t!r}; known: {', '.join(TRANSPORTS)}")
    for s in scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
    import grpc
    print(f"peer transport benchmark: Python {sys.version.split()[0]}, grpcio {grpc.__version__}, "
          f"asyncio's own event loop, {os.cpu_count()} CPUs, {args.repeat} rounds of at most "
          f"{args.seconds:g} s per scenario; load average {os.getloadavg()[0]:.1f}", flush=True)
    results: dict[str, dict[str, list[dict]]] = {t: {s: [] for s in scenarios} for t in transports}
    for rnd in range(args.repeat):
        order = transports[rnd % len(transports):] + transports[:rnd % len(transports)]
        for t in order:
            for s, r in one_round(t, scenarios, args.seconds).items():
                results[t][s].append(r)
            print(f"  round {rnd + 1}/{args.repeat}: {t} done", file=sys.stderr, flush=True)
    print(table(results, transports, scenarios))
    print("cli/srv us/msg: CPU per round trip (pingpong, fetch) or per message (oneway), client and server "
          "process; rate x, cpu x: against grpc-stream (cpu: both sides together)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
