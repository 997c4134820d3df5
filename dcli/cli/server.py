"""`dcli server start`: run one node in the foreground."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from dcli.wire import errors

app = typer.Typer(name="server", help="Run a dcli server (one node).", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]}, add_completion=False,
                  rich_markup_mode=None)


@app.command("start")
def start(listen: Optional[str] = typer.Option(None, "--listen", metavar="HOST:PORT",
                                               help="Address to serve on (port 0 picks a free one; default 127.0.0.1:7181)."),
          data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                                  help="Where this node keeps its data."),
          fsync: str = typer.Option("always", "--fsync", metavar="always|batch|off",
                                    help="always: fsync before every acknowledgement (concurrent writes share one); "
                                         "batch: every 100 ms; off: leave it to the OS."),
          max_data_bytes: int = typer.Option(1024 * 1024, "--max-data-bytes", metavar="N",
                                             help="Largest znode data accepted."),
          container_check_interval_ms: int = typer.Option(60000, "--container-check-interval-ms", metavar="MS",
                                                          help="How often empty containers and expired TTL nodes are removed."),
          snapshot_every: int = typer.Option(50000, "--snapshot-every", metavar="N",
                                             help="Write a snapshot after this many transactions."),
          broker_config_file: Optional[Path] = typer.Option(None, "--broker-config", metavar="FILE",
                                                            help="Broker settings in Kafka's server.properties form."),
          overrides: Optional[list[str]] = typer.Option(None, "--override", metavar="NAME=VALUE",
                                                        help="One broker setting over --broker-config, as kafka-server-start's "
                                                             "--override (e.g. replica.lag.time.max.ms=10000); repeatable."),
          num_partitions: Optional[int] = typer.Option(None, "--num-partitions", metavar="N",
                                                       help="Partitions of a topic created without a count (num.partitions, default 1)."),
          auto_create_topics: Optional[bool] = typer.Option(None, "--auto-create-topics/--no-auto-create-topics",
                                                            help="Create a topic on first use (auto.create.topics.enable, default on)."),
          group_initial_rebalance_delay_ms: int = typer.Option(
              3000, "--group-initial-rebalance-delay-ms", metavar="MS",
              help="How long a new consumer group waits for more members (group.initial.rebalance.delay.ms)."),
          node_id: str = typer.Option("1", "--node-id", metavar="N",
                                      help="This node's id in --peers (1-255)."),
          peers: Optional[str] = typer.Option(None, "--peers", metavar="ID=HOST:PORT,...",
                                              help="Every node of the cluster, the same list on each node; "
                                                   "--listen defaults to this node's address in it."),
          join: bool = typer.Option(False, "--join",
                                    help="This node is being added to a running cluster (see `dcli cluster member add`): "
                                         "start with an empty log and wait for the leader."),
          kv_weights: Optional[str] = typer.Option(None, "--kv-weights", metavar="ID=WEIGHT,...",
                                                   help="Key-value store: each node's capacity (virtual nodes in proportion), "
                                                        "the same list on every node; unlisted nodes weigh 1."),
          kv_vnodes: int = typer.Option(128, "--kv-vnodes", metavar="N", help="Virtual nodes per unit of weight."),
          kv_heartbeat_ms: int = typer.Option(1000, "--kv-heartbeat-ms", metavar="MS",
                                              help="How often KV nodes ping each other (failure detection, hand-off)."),
          kv_anti_entropy_ms: int = typer.Option(30000, "--kv-anti-entropy-ms", metavar="MS",
                                                 help="How often a KV node compares Merkle trees with its replicas."),
          kv_request_timeout_ms: int = typer.Option(2000, "--kv-request-timeout-ms", metavar="MS",
                                                    help="Deadline of one call to another KV node."),
          broker_session_timeout_ms: int = typer.Option(
              4000, "--broker-session-timeout-ms", metavar="MS",
              help="Cluster mode: the broker's session with the coordination tree; a broker silent this "
                   "long is taken for dead and its partitions get new leaders (Kafka's zookeeper.session.timeout.ms)."),
          log_level: str = typer.Option("warning", "--log-level", metavar="LEVEL")) -> None:
    """Serve the coordination service and the broker until SIGINT or SIGTERM."""
    import asyncio
    import logging

    from dcli_server.coord import Limits
    from dcli_server.main import default_data_dir, serve
    from dcli_server.node import NodeConfig
    from dcli_server.storage import CorruptLogError, DataDirLockedError, FsyncMode

    try:
        mode = FsyncMode(fsync)
    except ValueError:
        raise errors.UsageError(f"invalid --fsync '{fsync}': choose always, batch or off") from None
    from dcli.wire.peers import parse_node_id, parse_peers

    node = parse_node_id(node_id, "--node-id")
    members = parse_peers(peers) if peers is not None else {}
    if members and node not in members:
        raise errors.UsageError(f"--node-id {node} is not in --peers")
    if len(members) % 2 == 0 and members:
        print(f"WARNING: a cluster of {len(members)} nodes tolerates no more failures than one of "
              f"{len(members) - 1}; use an odd number of nodes", file=sys.stderr)
    listen = listen or members.get(node) or "127.0.0.1:7181"
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise errors.UsageError(f"invalid --listen '{listen}': expected host:port")
    if max_data_bytes <= 0 or container_check_interval_ms <= 0 or snapshot_every <= 0:
        raise errors.UsageError("--max-data-bytes, --container-check-interval-ms and --snapshot-every must be positive")
    broker_config = _broker_config(broker_config_file, num_partitions, auto_create_topics, overrides or [])
    if broker_session_timeout_ms <= 0:
        raise errors.UsageError("--broker-session-timeout-ms must be positive")
    if group_initial_rebalance_delay_ms < 0:
        raise errors.UsageError("--group-initial-rebalance-delay-ms must not be negative")
    from dcli_server.broker.groups import GroupConfig
    kv_config = _kv_config(kv_weights, kv_vnodes, kv_heartbeat_ms, kv_anti_entropy_ms, kv_request_timeout_ms)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    directory = (data_dir or default_data_dir(node)).expanduser().resolve()
    limits = Limits(max_data_bytes=max_data_bytes, container_check_interval_ms=container_check_interval_ms)
    config = NodeConfig(data_dir=directory, fsync=mode, limits=limits, snapshot_every=snapshot_every,
                        node_id=node, peers=members, join=join)

    def ready(address: str) -> None:
        print(f"dcli server listening on {address}, data in {directory} (fsync {mode.value})", flush=True)

    try:
        asyncio.run(serve(config, listen, ready=ready, broker_config=broker_config,
                          group_config=GroupConfig(initial_rebalance_delay_ms=group_initial_rebalance_delay_ms),
                          kv_config=kv_config, broker_session_timeout_ms=broker_session_timeout_ms))
    except (DataDirLockedError, CorruptLogError) as e:
        raise errors.DcliError("", str(e)) from None
    except OSError as e:
        raise errors.UnavailableError(listen, f"cannot serve on {listen}: {e}") from None
    sys.stdout.flush()


def _kv_config(weights: Optional[str], vnodes: int, heartbeat_ms: int, anti_entropy_ms: int, timeout_ms: int):
    from dcli.wire.peers import parse_node_id
    from dcli_server.kv.node import KVConfig

    parsed: dict[int, float] = {}
    for item in (p.strip() for p in (weights or "").split(",")):
        if not item:
            continue
        ident, sep, weight = item.partition("=")
        try:
            value = float(weight)
        except ValueError:
            value = 0.0
        if not sep or not 0 < value <= 1000:
            raise errors.UsageError(f"invalid --kv-weights item '{item}': expected ID=WEIGHT, weight above 0 up to 1000")
        parsed[parse_node_id(ident.strip(), "node id in --kv-weights")] = value
    if not 1 <= vnodes <= 4096:
        raise errors.UsageError("--kv-vnodes must be 1 to 4096")
    if min(heartbeat_ms, anti_entropy_ms, timeout_ms) <= 0:
        raise errors.UsageError("--kv-heartbeat-ms, --kv-anti-entropy-ms and --kv-request-timeout-ms must be positive")
    return KVConfig(weights=parsed, vnodes=vnodes, heartbeat_ms=heartbeat_ms, anti_entropy_ms=anti_entropy_ms,
                    request_timeout_ms=timeout_ms)


def _broker_config(path: Optional[Path], num_partitions: Optional[int], auto_create: Optional[bool],
                   overrides: list[str] = ()):
    """The broker's settings: a server.properties file, then the flags over it."""
    from dcli_server.broker.config import BrokerConfig, parse_properties

    props: dict[str, object] = {}
    if path is not None:
        try:
            props = dict(parse_properties(path.read_text()))
        except (OSError, UnicodeDecodeError) as e:
            raise errors.UsageError(f"cannot read --broker-config {path}: {e}") from None
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise errors.UsageError(f"invalid --override '{item}': expected NAME=VALUE")
        props[name.strip()] = value.strip()
    if num_partitions is not None:
        props["num.partitions"] = num_partitions
    if auto_create is not None:
        props["auto.create.topics.enable"] = auto_create
    try:
        config, unknown = BrokerConfig.from_properties(props)
    except errors.BrokerError as e:
        raise errors.UsageError(str(e)) from None
    for name in unknown:
        print(f"WARNING: The configuration '{name}' was supplied but isn't a known config.", file=sys.stderr)
    return config
