"""ServerConfig: every setting of one node, read from a TOML file, `DCLI_*` variables and flags,
validated once; and the server's own `main` (`python -m dcli_server`, `dcli server start`).

Precedence, lowest first: built-in defaults, the file given with `--config FILE`, environment
variables, flags. Each setting has one name used everywhere: `--data-dir` on the command line,
`data-dir = "..."` in the file, `DCLI_DATA_DIR` in the environment.

    config = load(["--config", "node.toml", "--listen", "127.0.0.1:0"], os.environ)
    config.listen, config.data_dir, config.node_config()

Starting a node imports neither Typer nor anything under `dcli.cli`: this module parses with
argparse, and the server's modules are imported only once the configuration is valid.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from dcli.wire.addresses import split_host_port
from dcli.wire.datadir import node_data_dir
from dcli.wire.errors import ExitCode, UsageError
from dcli.wire.peers import Member, format_peers, parse_node_id, parse_peers

if sys.version_info >= (3, 11):
    import tomllib
else:                                   # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_LISTEN = "127.0.0.1:7181"
ENV_PREFIX = "DCLI_"
MIN_SECRET_BYTES = 16
DEFAULT_ZK_LISTEN = "127.0.0.1:2181"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class ServerConfig:
    """One node's settings, validated. Fields are named as the settings, with underscores."""

    listen: str = DEFAULT_LISTEN
    peer_listen: str | None = None          # None: no peer listener (a node alone)
    cluster_secret_file: Path | None = None  # the nodes prove it to each other on the peer port
    cert_file: Path | None = None           # TLS on the client port (etcd's names)
    key_file: Path | None = None
    trusted_ca_file: Path | None = None
    client_cert_auth: bool = False
    peer_cert_file: Path | None = None      # mutual TLS on the peer port (etcd's names); default: the
    peer_key_file: Path | None = None       # client port's files
    peer_trusted_ca_file: Path | None = None
    peer_client_cert_auth: bool | None = None   # None: on whenever the peer port has certificates
    cluster_id: str | None = None           # None: the data dir's, else derived (peer_identity.py)
    zk_listen: str | None = DEFAULT_ZK_LISTEN   # ZooKeeper's protocol; None: off
    zk_secure_listen: str | None = None     # ZooKeeper's protocol over TLS (secureClientPort); None: off
    zk_4lw_whitelist: tuple = ("srvr",)    # ZooKeeper's 4lw.commands.whitelist
    zk_super_digest: str | None = None      # ZooKeeper's superDigest: user:base64(sha1(user:password))
    jute_maxbuffer: int = 0xFFFFF           # ZooKeeper's jute.maxbuffer: a longer packet closes the connection
    data_dir: Path = field(default_factory=node_data_dir)
    fsync: str = "always"
    unsafe_fsync: bool = False
    max_data_bytes: int = 1024 * 1024
    max_path_bytes: int = 4096
    max_watches_per_session: int = 100_000
    max_outstanding_requests: int = 1000
    max_client_cnxns: int = 60
    container_check_interval_ms: int = 60_000
    snapshot_every: int = 50_000
    broker_config: Path | None = None
    override: tuple[str, ...] = ()
    num_partitions: int | None = None
    auto_create_topics: bool | None = None
    group_initial_rebalance_delay_ms: int = 3000
    node_id: int = 1
    peers: dict[int, Member] = field(default_factory=dict)
    join: bool = False
    kv_weights: dict[int, float] = field(default_factory=dict)
    kv_vnodes: int = 128
    kv_heartbeat_ms: int = 1000
    kv_anti_entropy_ms: int = 30_000
    kv_request_timeout_ms: int = 2000
    broker_session_timeout_ms: int = 4000
    auth_token_ttl: int = 300
    log_level: str = "warning"

    # The domain's own configuration objects, built from these settings.
    def node_config(self):
        from dcli_server.coord import Limits
        from dcli_server.node import NodeConfig
        from dcli_server.storage import FsyncMode

        limits = Limits(max_data_bytes=self.max_data_bytes,
                        container_check_interval_ms=self.container_check_interval_ms,
                        max_path_bytes=self.max_path_bytes, max_watches_per_session=self.max_watches_per_session,
                        max_outstanding_per_session=self.max_outstanding_requests)
        return NodeConfig(data_dir=self.data_dir, fsync=FsyncMode(self.fsync), limits=limits,
                          snapshot_every=self.snapshot_every, node_id=self.node_id,
                          peers=self.client_addresses, peer_addresses=self.peer_addresses, join=self.join)

    @property
    def client_addresses(self) -> dict[int, str]:
        return {i: m.client for i, m in self.peers.items()}

    @property
    def peer_addresses(self) -> dict[int, str]:
        return {i: m.peer for i, m in self.peers.items()}

    def cluster_secret(self) -> bytes | None:
        """The shared secret of --cluster-secret-file (its bytes, without a trailing newline)."""
        if self.cluster_secret_file is None:
            return None
        try:
            secret = self.cluster_secret_file.read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise UsageError(f"cannot read --cluster-secret-file {self.cluster_secret_file}: "
                             f"{e.strerror or e}") from None
        if len(secret) < MIN_SECRET_BYTES:
            raise UsageError(f"--cluster-secret-file {self.cluster_secret_file}: the secret must be at least "
                             f"{MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32 > FILE`)")
        return secret

    def peer_tls(self):
        """The peer port's mutual TLS (a PeerTLS), or None: its own files, else the client port's.
        UsageError if a file cannot be read or used."""
        cert = self.peer_cert_file or (self.cert_file if self.peer_key_file is None else None)
        if cert is None:
            return None
        if (self.peer_trusted_ca_file or self.trusted_ca_file) is None:
            raise UsageError("--cert-file on a node with a peer port needs --trusted-ca-file (or "
                             "--peer-trusted-ca-file): the CA its peers' certificates are checked against")
        from dcli_server.listeners.peer_tls import PeerTLS

        tls = PeerTLS(cert, self.peer_key_file or self.key_file, self.peer_trusted_ca_file or self.trusted_ca_file,
                      self.peer_client_cert_auth is not False)
        try:
            tls.contexts()
        except (OSError, ValueError) as e:          # ssl.SSLError is an OSError
            raise UsageError(f"cannot use the peer TLS files ({tls.cert_file}, {tls.key_file}, "
                             f"{tls.trusted_ca_file}): {getattr(e, 'strerror', None) or e}") from None
        return tls

    def cluster_identity(self) -> str:
        """This node's cluster id, remembered in (and checked against) its data dir."""
        from dcli_server.listeners.peer_identity import resolve

        return resolve(self.data_dir, self.cluster_id, self.peer_addresses, self.join)

    def zk_tls(self):
        """The ssl context of the ZooKeeper TLS port (--zk-secure-listen), from the client port's files."""
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
            if self.trusted_ca_file is not None:
                context.load_verify_locations(cafile=str(self.trusted_ca_file))
        except (OSError, ssl.SSLError) as e:
            raise UsageError(f"--zk-secure-listen: cannot use --cert-file/--key-file/--trusted-ca-file: {e}") from None
        context.verify_mode = (ssl.CERT_REQUIRED if self.client_cert_auth else
                               ssl.CERT_OPTIONAL if self.trusted_ca_file is not None else ssl.CERT_NONE)
        return context

    def client_tls(self):
        """grpc server credentials for the client port, or None for plaintext."""
        if self.cert_file is None:
            return None
        import grpc

        def read(path: Path, flag: str) -> bytes:
            try:
                return path.read_bytes()
            except OSError as e:
                raise UsageError(f"cannot read {flag} {path}: {e.strerror or e}") from None
        ca = read(self.trusted_ca_file, "--trusted-ca-file") if self.trusted_ca_file else None
        return grpc.ssl_server_credentials([(read(self.key_file, "--key-file"), read(self.cert_file, "--cert-file"))],
                                           root_certificates=ca, require_client_auth=self.client_cert_auth)

    def broker(self):
        """(BrokerConfig, names it did not know): the properties file, then the overrides, then
        --num-partitions and --auto-create-topics over them."""
        from dcli_server.broker.config import BrokerConfig, parse_properties

        props: dict[str, object] = {}
        if self.broker_config is not None:
            try:
                props = dict(parse_properties(self.broker_config.read_text()))
            except (OSError, UnicodeDecodeError) as e:
                raise UsageError(f"cannot read --broker-config {self.broker_config}: {e}") from None
        for item in self.override:
            name, _, value = item.partition("=")
            props[name.strip()] = value.strip()
        if self.num_partitions is not None:
            props["num.partitions"] = self.num_partitions
        if self.auto_create_topics is not None:
            props["auto.create.topics.enable"] = self.auto_create_topics
        from dcli.wire.errors import BrokerError
        try:
            config, unknown = BrokerConfig.from_properties(props)
        except BrokerError as e:
            raise UsageError(str(e)) from None
        if len(self.peers) > 1 and config.broker_id not in (-1, self.node_id):
            raise UsageError(f"broker.id {config.broker_id} is not --node-id {self.node_id}: in a cluster "
                             f"each node's broker id is its node id")
        return config, unknown

    def group_config(self):
        from dcli_server.broker.groups import GroupConfig

        return GroupConfig(initial_rebalance_delay_ms=self.group_initial_rebalance_delay_ms)

    def kv_config(self):
        from dcli_server.kv.node import KVConfig

        return KVConfig(node_id=self.node_id, peers=self.client_addresses, peer_addresses=self.peer_addresses,
                        weights=dict(self.kv_weights),
                        vnodes=self.kv_vnodes, heartbeat_ms=self.kv_heartbeat_ms,
                        anti_entropy_ms=self.kv_anti_entropy_ms,
                        request_timeout_ms=self.kv_request_timeout_ms)


# --- the settings table: one row per setting, from which the flags, the environment variables
# and the file's keys are all made.

@dataclass(frozen=True)
class Setting:
    name: str                               # as the flag without "--" and the file's key
    parse: Callable[[Any, str], Any]        # (raw value, where it came from) -> value
    help: str
    metavar: str = ""
    flag: str = "value"                     # value | switch | negatable | repeat
    show: Callable[[Any], Any] = lambda v: v    # value -> what --print-config writes

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.field.upper()


def _int(low: int | None = None, high: int | None = None, what: str = "") -> Callable[[Any, str], int]:
    def parse(raw: Any, where: str) -> int:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise UsageError(f"invalid {where} {raw!r}: expected a whole number")
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"invalid {where} '{raw}': expected a whole number") from None
        if low is not None and value < low or high is not None and value > high:
            if high is None:
                rule = "must be positive" if low == 1 else f"must be at least {low}"
            else:
                rule = f"must be {low} to {high}"
            raise UsageError(f"invalid {where} '{raw}': {rule}")
        return value
    return parse


def _optional_int(low: int) -> Callable[[Any, str], int | None]:
    inner = _int(low)
    return lambda raw, where: None if raw in (None, "") else inner(raw, where)


def _bool(raw: Any, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"invalid {where} '{raw}': expected true or false")


def _choice(*choices: str) -> Callable[[Any, str], str]:
    def parse(raw: Any, where: str) -> str:
        if str(raw) not in choices:
            listed = ", ".join(choices[:-1]) + " or " + choices[-1]
            raise UsageError(f"invalid {where} '{raw}': choose {listed}")
        return str(raw)
    return parse


def _listen(raw: Any, where: str) -> str:
    split_host_port(str(raw), where, allow_zero=True)
    return str(raw)


def _peer_listen(raw: Any, where: str) -> str | None:
    return None if str(raw).lower() == "none" else _listen(raw, where)


def _words(raw: Any, where: str) -> tuple:
    from dcli_server.listeners.zk_words import parse_whitelist

    try:
        return parse_whitelist(",".join(raw) if isinstance(raw, (list, tuple)) else str(raw))
    except ValueError as e:
        raise UsageError(f"invalid {where}: {e}") from None


def _super_digest(raw: Any, where: str) -> str:
    user, sep, digest = str(raw).partition(":")
    if not user or not sep or not digest:
        raise UsageError(f"invalid {where} '{raw}': expected USER:BASE64(SHA1(USER:PASSWORD))")
    return str(raw)


def _path(raw: Any, where: str) -> Path:
    if not isinstance(raw, (str, os.PathLike)) or not str(raw):
        raise UsageError(f"invalid {where} {raw!r}: expected a path")
    return Path(raw).expanduser()


def _peers(raw: Any, where: str) -> dict[int, Member]:
    if isinstance(raw, Mapping):                # [peers] 1 = "host:port" in the file
        raw = ",".join(f"{k}={v}" for k, v in raw.items())
    return parse_peers(str(raw))


def _weights(raw: Any, where: str) -> dict[int, float]:
    if isinstance(raw, Mapping):
        raw = ",".join(f"{k}={v}" for k, v in raw.items())
    parsed: dict[int, float] = {}
    for item in (p.strip() for p in str(raw).split(",")):
        if not item:
            continue
        ident, sep, weight = item.partition("=")
        try:
            value = float(weight)
        except ValueError:
            value = 0.0
        if not sep or not 0 < value <= 1000:
            raise UsageError(f"invalid {where} item '{item}': expected ID=WEIGHT, weight above 0 up to 1000")
        parsed[parse_node_id(ident.strip(), f"node id in {where}")] = value
    return parsed


def _overrides(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, Mapping):                # [override] "num.partitions" = 3 in the file
        raw = [f"{k}={_property_text(v)}" for k, v in raw.items()]
    elif isinstance(raw, str):
        raw = [raw]
    items = []
    for item in raw:
        name, sep, _ = str(item).partition("=")
        if not sep or not name.strip():
            raise UsageError(f"invalid {where} '{item}': expected NAME=VALUE")
        items.append(str(item))
    return tuple(items)


def _property_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _cluster_id(raw: Any, where: str) -> str:
    from dcli_server.listeners.peer_identity import check

    return check(str(raw), where)


def _log_level(raw: Any, where: str) -> str:
    return _choice(*LOG_LEVELS)(str(raw).lower(), where)


SETTINGS: tuple[Setting, ...] = (
    Setting("listen", _listen, "Address to serve on (port 0 picks a free one; default 127.0.0.1:7181, "
            "or this node's address in --peers).", "HOST:PORT"),
    Setting("peer-listen", _peer_listen, "Address other nodes talk to this one on (its own port; default: "
            "this node's peer address in --peers, none for a node alone; port 0 picks a free one).",
            "HOST:PORT|none", show=lambda v: v if v else "none"),
    Setting("data-dir", _path, "Where this node keeps its data (default: ~/.local/share/dcli/node-N).", "DIR",
            show=str),
    Setting("fsync", _choice("always", "batch", "off"),
            "always: fsync before every acknowledgement (concurrent writes share one); "
            "batch: every 100 ms; off: leave it to the OS. A node of a cluster needs --unsafe-fsync for "
            "batch or off.", "always|batch|off"),
    Setting("unsafe-fsync", _bool, "Accept --fsync batch or off in a cluster, where nodes that lose power "
            "together can forget writes they acknowledged (etcd's --unsafe-no-fsync).", flag="switch"),
    Setting("max-data-bytes", _int(1), "Largest znode data accepted.", "N"),
    Setting("max-path-bytes", _int(1), "Longest znode path accepted.", "N"),
    Setting("max-watches-per-session", _int(0), "Watches one session may hold (0: no limit).", "N"),
    Setting("zk-listen", _peer_listen, "Address ZooKeeper's clients (zkCli.sh, kazoo, Curator) talk to "
            "this node on, in ZooKeeper's own protocol (default 127.0.0.1:2181; none: off; port 0 picks a "
            "free one).", "HOST:PORT|none", show=lambda v: v if v else "none"),
    Setting("zk-secure-listen", _peer_listen, "Address for ZooKeeper's protocol over TLS (ZooKeeper's "
            "secureClientPort), with --cert-file and --key-file; --trusted-ca-file checks client "
            "certificates, required with --client-cert-auth (default none).", "HOST:PORT|none",
            show=lambda v: v if v else "none"),
    Setting("zk-4lw-whitelist", _words, "Four-letter words answered on the ZooKeeper ports, comma-separated "
            "(ZooKeeper's 4lw.commands.whitelist; default srvr; * for all: ruok, srvr, stat, mntr, envi, "
            "conf, cons, crst, srst, wchs, wchc, wchp, dump, dirs, isro).", "WORD,...|*",
            show=lambda v: ",".join(v)),
    Setting("zk-super-digest", _super_digest, "A digest id, user:base64(sha1(user:password)), whose "
            "`addauth digest user:password` passes every ACL (ZooKeeper's "
            "zookeeper.DigestAuthenticationProvider.superDigest; default none).", "USER:DIGEST"),
    Setting("jute-maxbuffer", _int(1024, 64 * 1024 * 1024), "Longest ZooKeeper packet accepted, in bytes (ZooKeeper's "
            "jute.maxbuffer, 1048575); a longer one closes the connection.", "N"),
    Setting("max-client-cnxns", _int(0), "Sessions one client address may hold open on this node at once "
            "(ZooKeeper's maxClientCnxns, 60; 0: no limit).", "N"),
    Setting("max-outstanding-requests", _int(1), "Requests of one session read and not yet answered; past "
            "this the server stops reading the session's stream until answers leave (ZooKeeper's "
            "globalOutstandingLimit).", "N"),
    Setting("container-check-interval-ms", _int(1),
            "How often empty containers and expired TTL nodes are removed.", "MS"),
    Setting("snapshot-every", _int(1), "Write a snapshot after this many transactions.", "N"),
    Setting("broker-config", lambda raw, where: None if raw in (None, "") else _path(raw, where),
            "Broker settings in Kafka's server.properties form.", "FILE", show=lambda v: str(v) if v else None),
    Setting("override", _overrides, "One broker setting over --broker-config, as kafka-server-start's "
            "--override (e.g. replica.lag.time.max.ms=10000); repeatable.", "NAME=VALUE", flag="repeat",
            show=list),
    Setting("num-partitions", _optional_int(1),
            "Partitions of a topic created without a count (num.partitions, default 1).", "N"),
    Setting("auto-create-topics", lambda raw, where: None if raw is None else _bool(raw, where),
            "Create a topic on first use (auto.create.topics.enable, default on).", flag="negatable"),
    Setting("group-initial-rebalance-delay-ms", _int(0),
            "How long a new consumer group waits for more members (group.initial.rebalance.delay.ms).", "MS"),
    Setting("node-id", lambda raw, where: parse_node_id(raw, where), "This node's id in --peers (1-255).", "N"),
    Setting("peers", _peers, "Every node of the cluster with its client and peer addresses, the same "
            "list on each node (a peer address left out is the client port + 1000); --listen and "
            "--peer-listen default to this node's addresses in it.", "ID=HOST:PORT[/PEER],...",
            show=lambda v: format_peers(v) if v else None),
    Setting("join", _bool, "This node is being added to a running cluster (see `dcli cluster member add`): "
            "start with an empty log and wait for the leader.", flag="switch"),
    Setting("cluster-secret-file", lambda raw, where: None if raw in (None, "") else _path(raw, where),
            "A file holding the cluster's shared secret (16 bytes or more, the same on every node): a "
            "node proves it to each peer, by challenge and response, before they talk.", "FILE",
            show=lambda v: str(v) if v else None),
    Setting("cert-file", lambda raw, where: None if raw in (None, "") else _path(raw, where),
            "The client port's TLS certificate (PEM); with --key-file, clients connect with TLS.", "FILE",
            show=lambda v: str(v) if v else None),
    Setting("key-file", lambda raw, where: None if raw in (None, "") else _path(raw, where),
            "The key of --cert-file (PEM).", "FILE", show=lambda v: str(v) if v else None),
    Setting("trusted-ca-file", lambda raw, where: None if raw in (None, "") else _path(raw, where),
            "The CA that signs client certificates (PEM), for --client-cert-auth.", "FILE",
            show=lambda v: str(v) if v else None),
    Setting("client-cert-auth", _bool, "Clients must present a certificate signed by --trusted-ca-file.",
            flag="switch"),
    Setting("peer-cert-file", lambda raw, where: None if raw in (None, "") else _path(raw, where),
            "The peer port's TLS certificate (PEM), presented to the other nodes both ways; default "
            "--cert-file. With certificates the peer port speaks mutual TLS.", "FILE",
            show=lambda v: str(v) if v else None),
    Setting("peer-key-file", lambda raw, where: None if raw in (None, "") else _path(raw, where),
            "The key of --peer-cert-file (PEM); default --key-file.", "FILE", show=lambda v: str(v) if v else None),
    Setting("peer-trusted-ca-file", lambda raw, where: None if raw in (None, "") else _path(raw, where),
            "The CA that signs the nodes' peer certificates (PEM); default --trusted-ca-file.", "FILE",
            show=lambda v: str(v) if v else None),
    Setting("peer-client-cert-auth", lambda raw, where: None if raw is None else _bool(raw, where),
            "Nodes dialling this one must present a certificate signed by --peer-trusted-ca-file (on "
            "whenever the peer port has certificates, as in etcd; --no-peer-client-cert-auth turns it off).",
            flag="negatable"),
    Setting("cluster-id", lambda raw, where: None if raw in (None, "") else _cluster_id(raw, where),
            "The id of the cluster this node belongs to (made by `dcli cluster up`); remembered by the "
            "data dir, which then refuses another; nodes of other clusters are refused on the peer "
            "port. Default: the data dir's, else one derived from --peers.", "ID"),
    Setting("kv-weights", _weights, "Key-value store: each node's capacity (virtual nodes in proportion), "
            "the same list on every node; unlisted nodes weigh 1.", "ID=WEIGHT,...",
            show=lambda v: ",".join(f"{k}={w:g}" for k, w in sorted(v.items())) or None),
    Setting("kv-vnodes", _int(1, 4096), "Virtual nodes per unit of weight.", "N"),
    Setting("kv-heartbeat-ms", _int(1), "How often KV nodes ping each other (failure detection, hand-off).", "MS"),
    Setting("kv-anti-entropy-ms", _int(1), "How often a KV node compares Merkle trees with its replicas.", "MS"),
    Setting("kv-request-timeout-ms", _int(1), "Deadline of one call to another KV node.", "MS"),
    Setting("broker-session-timeout-ms", _int(1),
            "Cluster mode: the broker's session with the coordination tree; a broker silent this long is "
            "taken for dead and its partitions get new leaders (Kafka's zookeeper.session.timeout.ms).", "MS"),
    Setting("auth-token-ttl", _int(1, 86_400), "Seconds an auth token is good for once issued (etcd's "
            "--auth-token-ttl, 300); clients log in again on their own.", "SECONDS"),
    Setting("log-level", _log_level, "debug, info, warning (default), error or critical.", "LEVEL"),
)
BY_NAME = {s.name: s for s in SETTINGS}


class _Parser(argparse.ArgumentParser):
    """argparse, with its complaints raised as one-line UsageErrors instead of usage + exit."""

    def error(self, message: str):
        if message.startswith("unrecognized arguments: "):
            first = message.split(": ", 1)[1].split()[0]
            message = f"Unrecognized option: {first}"
        raise UsageError(message)


def _flag_parser(prog: str) -> _Parser:
    parser = _Parser(prog=prog, allow_abbrev=False,
                     description="Serve the coordination service, the broker and the key-value store "
                                 "until SIGINT or SIGTERM.",
                     epilog=f"Every setting can also be given in the --config file (as `name = value`, "
                            f"e.g. `data-dir = \"/var/lib/dcli\"`) or as an environment variable "
                            f"({ENV_PREFIX}NAME, e.g. DCLI_DATA_DIR); flags win over the environment, "
                            f"which wins over the file.")
    parser.add_argument("--config", metavar="FILE", help="Read settings from this TOML file.")
    parser.add_argument("--print-config", action="store_true",
                        help="Print the effective settings as TOML (a config file) and exit.")
    for s in SETTINGS:
        if s.flag == "switch":
            parser.add_argument(f"--{s.name}", dest=s.field, action="store_const", const=True, help=s.help)
        elif s.flag == "negatable":
            parser.add_argument(f"--{s.name}", dest=s.field, action="store_const", const=True, help=s.help)
            parser.add_argument(f"--no-{s.name}", dest=s.field, action="store_const", const=False,
                                help=argparse.SUPPRESS)
        elif s.flag == "repeat":
            parser.add_argument(f"--{s.name}", dest=s.field, action="append", metavar=s.metavar, help=s.help)
        else:
            parser.add_argument(f"--{s.name}", dest=s.field, metavar=s.metavar, help=s.help)
    return parser


def read_file(path: Path) -> dict[str, Any]:
    """A config file's settings by name; unknown keys are refused (a typo must not pass)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise UsageError(f"cannot read --config {path}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"invalid --config {path}: {e}") from None
    out = {}
    for key, value in data.items():
        name = key.replace("_", "-")
        if name not in BY_NAME:
            raise UsageError(f"invalid --config {path}: unknown setting '{key}'")
        out[name] = value
    return out


def load(argv: Sequence[str], environ: Mapping[str, str] | None = None,
         prog: str = "dcli server start") -> tuple[ServerConfig, bool]:
    """(the configuration, whether --print-config was asked); UsageError for anything invalid."""
    environ = os.environ if environ is None else environ
    flags = vars(_flag_parser(prog).parse_args(list(argv)))
    values: dict[str, Any] = {}
    sources: list[tuple[dict[str, Any], Callable[[Setting], str]]] = []
    config_path = flags.pop("config") or environ.get(ENV_PREFIX + "CONFIG")
    if config_path:
        in_file = read_file(Path(config_path).expanduser())
        sources.append((in_file, lambda s, p=config_path: f"{s.name} in {p}"))
    in_env = {s.name: environ[s.env] for s in SETTINGS if environ.get(s.env) not in (None, "")}
    sources.append((in_env, lambda s: s.env))
    in_flags = {s.name: flags[s.field] for s in SETTINGS if flags.get(s.field) is not None}
    sources.append((in_flags, lambda s: f"--{s.name}"))
    for given, where in sources:
        for name, raw in given.items():
            setting = BY_NAME[name]
            values[setting.field] = setting.parse(raw, where(setting))
    return _complete(values), bool(flags.get("print_config"))


def _complete(values: dict[str, Any]) -> ServerConfig:
    """The settings that depend on others, and the checks across settings."""
    node_id = values.get("node_id", 1)
    peers = values.get("peers", {})
    if peers and node_id not in peers:
        raise UsageError(f"--node-id {node_id} is not in --peers")
    me = peers.get(node_id)
    values.setdefault("listen", me.client if me else DEFAULT_LISTEN)
    if "peer_listen" not in values:
        values["peer_listen"] = me.peer if me else None
    elif values["peer_listen"] is None and len(peers) > 1:
        raise UsageError("--peer-listen none: a node of a cluster needs its peer listener")
    fsync = values.get("fsync", "always")
    if len(peers) > 1 and fsync != "always" and not values.get("unsafe_fsync"):
        raise UsageError(f"--fsync {fsync} in a cluster: nodes that lose power together can forget writes "
                         "they acknowledged; give --unsafe-fsync to accept that")
    if values.get("zk_secure_listen") and not values.get("cert_file"):
        raise UsageError("--zk-secure-listen needs --cert-file and --key-file")
    if bool(values.get("cert_file")) != bool(values.get("key_file")):
        raise UsageError("--cert-file and --key-file go together")
    if values.get("client_cert_auth") and not (values.get("trusted_ca_file") and values.get("cert_file")):
        raise UsageError("--client-cert-auth needs --cert-file, --key-file and --trusted-ca-file")
    if bool(values.get("peer_cert_file")) != bool(values.get("peer_key_file")):
        raise UsageError("--peer-cert-file and --peer-key-file go together")
    if values.get("peer_cert_file") and not (values.get("peer_trusted_ca_file") or values.get("trusted_ca_file")):
        raise UsageError("--peer-cert-file needs --peer-trusted-ca-file: the CA that signed the nodes' certificates")
    data_dir = values.get("data_dir") or node_data_dir(node_id)
    values["data_dir"] = data_dir.expanduser().resolve()
    return ServerConfig(**values)


def to_toml(config: ServerConfig) -> str:
    """The configuration as a file `--config` reads back to the same settings."""
    lines = []
    for s in SETTINGS:
        value = s.show(getattr(config, s.field))
        if value is None:
            lines.append(f"# {s.name} =")
        else:
            lines.append(f"{s.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def main(argv: Sequence[str] | None = None, prog: str = "dcli server start") -> int:
    """Run one node in the foreground until SIGINT/SIGTERM; returns the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        try:
            config, print_only = load(args, os.environ, prog)
        except SystemExit as e:                 # --help, printed by argparse
            return int(e.code or 0)
        if print_only:
            sys.stdout.write(to_toml(config))
            return ExitCode.OK
        broker, unknown = config.broker()
        config.cluster_secret()                 # readable and long enough, before anything starts
        config.client_tls()
        if config.peer_listen is not None:
            config.peer_tls()
            config.cluster_identity()           # this data dir's cluster, before anything starts
    except UsageError as e:
        return _fail(str(e), e.exit_code)
    if len(config.peers) % 2 == 0 and config.peers:
        print(f"WARNING: a cluster of {len(config.peers)} nodes tolerates no more failures than one of "
              f"{len(config.peers) - 1}; use an odd number of nodes", file=sys.stderr)
    for name in unknown:
        print(f"WARNING: The configuration '{name}' was supplied but isn't a known config.", file=sys.stderr)
    return run(config, broker)


def run(config: ServerConfig, broker_config=None) -> int:
    import asyncio
    import logging

    from dcli_server.main import serve
    from dcli_server.storage import CorruptLogError, DataDirLockedError
    from dcli_server.storage.files import DamagedFileError

    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if broker_config is None:
        broker_config, _ = config.broker()

    def ready(address: str, zk_address: str | None = None) -> None:
        if config.peer_listen is not None and config.cluster_secret_file is None and config.peer_tls() is None:
            print("WARNING: no --cluster-secret-file: any process that reaches the peer port "
                  f"{config.peer_listen} can act as a node of this cluster", file=sys.stderr, flush=True)
        tls = ", TLS" if config.cert_file else ""
        zk = f", zookeeper on {zk_address}" if zk_address else ""
        print(f"dcli server listening on {address}{zk}, data in {config.data_dir} (fsync {config.fsync}{tls})",
              flush=True)

    try:
        asyncio.run(serve(config, ready=ready, broker_config=broker_config))
    except (DataDirLockedError, CorruptLogError, DamagedFileError) as e:
        return _fail(str(e), ExitCode.ERROR)
    except OSError as e:
        return _fail(f"cannot serve on {config.listen}: {e}", ExitCode.UNAVAILABLE)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    sys.stdout.flush()
    return ExitCode.OK


def _fail(message: str, code: int) -> int:
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    return int(code)
