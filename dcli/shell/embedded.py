"""--embedded: an in-process server on the default data dir when nothing answers at the address.

`dcli_server.main.serve` stops on SIGINT/SIGTERM through `loop.add_signal_handler`, which only
works in the main thread; here it runs on its own loop in a thread, and that loop keeps the
handler instead of installing it, so `stop()` can call it (the server then shuts down cleanly).
"""
from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading

START_TIMEOUT_S = 30.0


def reachable(address: str, timeout: float = 0.5) -> bool:
    host, _, port = address.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


class _ThreadLoop(asyncio.SelectorEventLoop):
    def __init__(self):
        super().__init__()
        self.stop_callbacks = []

    def add_signal_handler(self, sig, callback, *args):
        self.stop_callbacks.append((callback, args))


class EmbeddedServer:
    def __init__(self, listen: str):
        self.listen = listen
        self.address = ""
        self.zk_address: str | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop = _ThreadLoop()
        self._thread = threading.Thread(target=self._run, name="dcli-embedded-server", daemon=True)

    def start(self) -> EmbeddedServer:
        self._thread.start()
        self._ready.wait(START_TIMEOUT_S)
        if self.error is not None:
            raise self.error
        return self

    def _run(self) -> None:
        from dcli_server.config import DEFAULT_ZK_LISTEN, ServerConfig
        from dcli_server.main import serve

        def ready(address, zk_address=None):
            self.address, self.zk_address = address, zk_address
            self._ready.set()
        # ZooKeeper's protocol on 2181 as `dcli server start` has it, unless DCLI_ZK_LISTEN says otherwise
        zk = os.environ.get("DCLI_ZK_LISTEN", DEFAULT_ZK_LISTEN)
        settings = ServerConfig(listen=self.listen, zk_listen=None if zk.lower() == "none" else zk)
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(serve(settings, ready=ready))
        except BaseException as e:       # reported to start(), which raises it in the caller
            self.error = e
        finally:
            self._ready.set()

    def stop(self) -> None:
        for callback, args in self._loop.stop_callbacks:
            self._loop.call_soon_threadsafe(callback, *args)
        self._thread.join(timeout=10)


def ensure_server(address: str) -> EmbeddedServer | None:
    """Start a server at `address` unless one answers there already."""
    if reachable(address):
        return None
    sys.stderr.write(f"No server at {address}: starting an embedded one\n")
    try:
        return EmbeddedServer(address).start()
    except BaseException as e:
        sys.stderr.write(f"cannot start the embedded server: {e}\n")
        return None
