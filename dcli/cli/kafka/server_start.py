"""`kafka-server-start server.properties [--override k=v ...]`: a dcli server configured from a
Kafka broker's properties file, so a Kafka quickstart's command line works as written.

From the file: `listeners` (the first PLAINTEXT one; an empty host or `localhost` binds
127.0.0.1), `log.dirs` (the node's data directory: the partition directories go in its `broker/`),
`broker.id`, and the broker settings `dcli server start --broker-config` reads (num.partitions,
default.replication.factor, log.retention.*, log.segment.bytes, auto.create.topics.enable, ...).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from dcli.wire import errors

DEFAULT_LISTENER = "127.0.0.1:9092"
DEFAULT_LOG_DIRS = "/tmp/kafka-logs"
USAGE = "USAGE: kafka-server-start [-daemon] server.properties [--override property=value]*"


def listen_address(listeners: str | None) -> str:
    """`PLAINTEXT://:9092,SSL://...` -> 127.0.0.1:9092 (this server speaks plaintext gRPC)."""
    if not listeners:
        return DEFAULT_LISTENER
    for item in listeners.split(","):
        name, sep, rest = item.strip().partition("://")
        if not sep:
            raise errors.UsageError(f"Invalid listener: {item.strip()} (expected NAME://host:port)")
        host, colon, port = rest.rpartition(":")
        if not colon or not port.isdigit():
            raise errors.UsageError(f"Invalid listener: {item.strip()} (expected NAME://host:port)")
        if name.upper() in ("PLAINTEXT", "BROKER", "CLIENT", "INTERNAL", "EXTERNAL"):
            if host in ("", "localhost", "0.0.0.0", "[::]"):
                host = "127.0.0.1"
            return f"{host}:{port}"
    raise errors.UsageError(f"No PLAINTEXT listener in listeners={listeners}")


def server_args(argv: list[str]) -> list[str]:
    """The `dcli server start` arguments for a kafka-server-start command line."""
    from dcli_server.broker.config import parse_properties

    args = [a for a in argv if a not in ("-daemon", "--daemon")]
    if not args or args[0].startswith("-"):
        raise errors.UsageError(USAGE)
    path, rest = Path(args[0]), args[1:]
    try:
        props = parse_properties(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise errors.UsageError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    while rest:
        if rest[0] != "--override" or len(rest) < 2 or "=" not in rest[1]:
            raise errors.UsageError(USAGE)
        key, _, value = rest[1].partition("=")
        props[key.strip()] = value.strip()
        rest = rest[2:]
    listen = listen_address(props.pop("listeners", None))
    props.pop("advertised.listeners", None)
    log_dirs = props.get("log.dirs") or props.get("log.dir") or DEFAULT_LOG_DIRS
    data_dir = log_dirs.split(",")[0].strip()
    # what the broker reads from the file: everything else, written back out for --broker-config
    merged = tempfile.NamedTemporaryFile("w", prefix="dcli-server-", suffix=".properties", delete=False)
    with merged:
        for key, value in props.items():
            merged.write(f"{key}={value}\n".replace("\\", "\\\\"))
    return ["start", "--listen", listen, "--data-dir", data_dir, "--broker-config", merged.name]


def main(argv: list[str] | None = None) -> None:
    from dcli.cli.main import app
    from dcli.cli.runner import exit_now, fail, run

    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        args = server_args(sys.argv[1:] if argv is None else argv)
    except errors.DcliError as e:
        exit_now(fail(str(e), e.exit_code))
    try:
        code = run(app, ["server", *args], "kafka-server-start")
    finally:
        os.unlink(args[-1])
    exit_now(code)
