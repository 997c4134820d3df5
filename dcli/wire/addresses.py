"""host:port addresses, parsed one way for the whole project (flags, --peers, server lists).

    >>> split_host_port("127.0.0.1:7181")
    ('127.0.0.1', 7181)
    >>> split_host_port("[::1]:7181")
    ('::1', 7181)
    >>> split_servers("a:1, b:2")
    ['a:1', 'b:2']
"""
from __future__ import annotations

from dcli.wire.errors import UsageError


def split_host_port(address: str, what: str = "address", *, allow_zero: bool = False,
                    default_port: int | None = None) -> tuple[str, int]:
    """(host, port) of "host:port" (an IPv6 host in brackets); UsageError naming `what` if it is
    not one. Port 0 ("pick a free one") only with allow_zero; a bare host takes default_port."""
    text = address.strip()
    host, sep, port = text.rpartition(":")
    if not sep and default_port is not None:
        host, port = text, str(default_port)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:               # an IPv6 address needs brackets to carry a port
        host = ""
    low = 0 if allow_zero else 1
    if not host or not port.isdigit() or not low <= int(port) <= 65535:
        raise UsageError(f"invalid {what} '{address}': expected host:port")
    return host, int(port)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_servers(text: str) -> list[str]:
    """A comma-separated server list, blanks dropped (zkCli's and Kafka's --bootstrap-server form)."""
    return [s.strip() for s in text.split(",") if s.strip()]
