"""How a running balancer is found and asked for its statistics.

Each balancer serves `GET /stats` (JSON: the balancer and one object per backend) on its admin
address, and registers itself with the service registry recipe under its own root, /dcli/lb:
the balancer's name is the service and the admin address the instance's address, so the entry
lives exactly as long as the balancer's session.

    /dcli/lb/orders/n_0000000003   {"address": "127.0.0.1:41877",
                                    "meta": {"listen": "127.0.0.1:8080", "service": "orders", ...}}

`dcli lb stats [NAME]` lists those entries and fetches each one's /stats.
"""
from __future__ import annotations

import asyncio
import json
from typing import Callable

import h11

from dcli.wire import errors

LB_ROOT = "/dcli/lb"
READ_SIZE = 64 * 1024


async def serve_admin(host: str, port: int, snapshot: Callable[[], dict]) -> asyncio.Server:
    """An HTTP server answering GET /stats (and /) with snapshot() as JSON; one request per
    connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            request = None
            while request is None:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await asyncio.wait_for(reader.read(READ_SIZE), 10.0))
                elif isinstance(event, h11.Request):
                    request = event
                else:
                    return
            path = request.target.split(b"?", 1)[0]
            if request.method not in (b"GET", b"HEAD"):
                status, body = 405, b'{"error": "use GET"}\n'
            elif path in (b"/", b"/stats"):
                status, body = 200, json.dumps(snapshot(), indent=1).encode() + b"\n"
            else:
                status, body = 404, b'{"error": "not found: try /stats"}\n'
            headers = [("content-type", "application/json"), ("content-length", str(len(body))),
                       ("connection", "close")]
            writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
            if request.method != b"HEAD":
                writer.write(conn.send(h11.Data(data=body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        except (OSError, asyncio.TimeoutError, h11.ProtocolError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, reuse_address=True)


def register(client, name: str, admin_address: str, info: dict):
    """This balancer's entry (a Registration; it goes with the session)."""
    from dcli.recipes import ServiceRegistry

    return ServiceRegistry(client, LB_ROOT).register(name, admin_address, info)


def find(client, name: str | None = None) -> list:
    """The registered balancers (named `name`, or all), as registry Instances."""
    from dcli.recipes import ServiceRegistry

    registry = ServiceRegistry(client, LB_ROOT)
    names = [name] if name else registry.services()
    found = [i for n in names for i in registry.instances(n)]
    if not found:
        where = f"{LB_ROOT}/{name}" if name else LB_ROOT
        raise errors.NoNodeError(where, f"no load balancer is registered under {where}")
    return found


def fetch(admin_address: str, timeout: float = 5.0) -> dict:
    """GET /stats of a balancer (directly: no HTTP proxy from the environment applies);
    OSError or ValueError when it cannot be had."""
    import http.client

    from dcli.lb.upstream import split_address

    host, port = split_address(admin_address)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/stats")
        reply = conn.getresponse()
        body = reply.read()
        if reply.status != 200:
            raise ValueError(f"answered {reply.status}")
        return json.loads(body)
    except http.client.HTTPException as e:
        raise ValueError(str(e) or type(e).__name__) from None
    finally:
        conn.close()
