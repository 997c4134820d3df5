"""A tiny real backend for the load balancer's tests, answering with its own name.

    python tests/integration/lb_backend.py NAME [--mode http|tcp] [--delay SECONDS]
        [--server ADDR --service NAME [--root PATH] [--meta KEY=VALUE ...] [--session-timeout S]]

http: every request is answered 200 with a JSON body {"backend", "conn", "method", "path",
"xff", "xfp", "xfh", "forwarded", "real_ip", "bytes", "sha256"}; `conn` numbers the connections this backend accepted (so
keep-alive reuse is visible); `bytes` and `sha256` are the request body's length and digest, read
in chunks as it arrives (Content-Length or chunked), never held whole. GET /big/SIZE answers
SIZE bytes instead.
tcp: every line received is answered with "NAME CONN LINE".
`--delay` is added to every answer (a slow backend). With --server it registers itself into
the service registry (the recipe), with --meta as its metadata.

Prints `backend NAME listening on HOST:PORT` when serving, `backend NAME registered as PATH`
once registered. Commands on stdin, one a line: `meta KEY=VALUE ...` replaces its metadata
(answers `backend NAME meta ...`), `unregister` leaves the registry (`backend NAME unregistered`).
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import json
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

connection_ids = itertools.count(1)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def http_server(name: str, delay: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"          # keep-alive

        def setup(self):
            super().setup()
            self.conn_id = next(connection_ids)

        def read_body(self) -> tuple[int, str]:
            digest, count = hashlib.sha256(), 0
            for chunk in self.body_chunks():
                digest.update(chunk)
                count += len(chunk)
            return count, digest.hexdigest()

        def body_chunks(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                    yield from self.exactly(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):     # trailers
                    pass
            else:
                yield from self.exactly(int(self.headers.get("Content-Length") or 0))

        def exactly(self, size: int):
            while size > 0:
                chunk = self.rfile.read(min(size, 65536))
                if not chunk:
                    raise ConnectionError("body cut short")
                size -= len(chunk)
                yield chunk

        def answer(self):
            count, digest = self.read_body()
            if self.path.startswith("/big/"):
                return self.big(int(self.path[len("/big/"):]))
            if delay:
                time.sleep(delay)              # the work this backend takes
            body = json.dumps({"backend": name, "conn": self.conn_id, "method": self.command,
                               "path": self.path, "xff": self.headers.get("X-Forwarded-For"),
                               "xfp": self.headers.get("X-Forwarded-Proto"),
                               "xfh": self.headers.get("X-Forwarded-Host"),
                               "forwarded": self.headers.get("Forwarded"),
                               "real_ip": self.headers.get("X-Real-IP"),
                               "bytes": count, "sha256": digest}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend", name)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def big(self, size: int):
            """GET /big/SIZE: SIZE bytes of 'z', written as fast as the client takes them."""
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = b"z" * 65536
            while size > 0:
                self.wfile.write(block[:size])
                size -= len(block)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


def tcp_server(name: str, delay: float) -> socketserver.ThreadingTCPServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            conn_id = next(connection_ids)
            for line in self.rfile:
                if delay:
                    time.sleep(delay)
                self.wfile.write(f"{name} {conn_id} ".encode() + line)
                self.wfile.flush()

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


def parse_meta(items: list[str]) -> dict:
    return dict(item.split("=", 1) for item in items)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("--mode", choices=("http", "tcp"), default="http")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--server")
    p.add_argument("--service")
    p.add_argument("--root", default="/service_registry")
    p.add_argument("--meta", nargs="*", default=[])
    p.add_argument("--session-timeout", type=float, default=30.0)
    args = p.parse_args()

    server = (http_server if args.mode == "http" else tcp_server)(args.name, args.delay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    address = f"{host}:{port}"
    say(f"backend {args.name} listening on {address}")

    entry = None
    if args.server:
        from dcli.client import CoordClient
        from dcli.recipes import ServiceRegistry

        client = CoordClient(args.server, timeout=args.session_timeout).start()
        entry = ServiceRegistry(client, args.root).register(args.service, address, parse_meta(args.meta))
        say(f"backend {args.name} registered as {entry.path}")
    for line in sys.stdin:
        words = line.split()
        if not words or entry is None:
            continue
        if words[0] == "meta":
            entry.update(parse_meta(words[1:]))
            say(f"backend {args.name} meta {' '.join(words[1:])}")
        elif words[0] == "unregister":
            entry.unregister()
            say(f"backend {args.name} unregistered")
    os._exit(0)         # stdin closed: the test is done with us (no teardown of the client's threads)


if __name__ == "__main__":
    main()
