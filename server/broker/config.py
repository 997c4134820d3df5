"""The broker's settings, with Kafka's names and defaults, and a reader for Kafka's
`server.properties` (Java properties syntax).

    config = BrokerConfig.from_properties(parse_properties(Path("server.properties").read_text()))
    config.num_partitions, config.log_config().segment_bytes

Settings a topic can override (segment.bytes, retention.ms, ...) come from the broker's `log.*`
names; `topic_defaults()` gives them under the topic's names, and `explicit` says which ones the
operator set (Kafka lists those as non-default in `kafka-topics --describe`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Mapping

from dcli.wire.errors import InvalidConfigurationError
from dcli_server.broker.requests import MAX_FETCH_BYTES
from dcli_server.storage.log_config import LogConfig, invalid, parse_number

_HOUR_MS = 60 * 60 * 1000

# Kafka name -> (field, kind, smallest allowed value)
_SETTINGS: dict[str, tuple[str, str, int | None]] = {
    "broker.id": ("broker_id", "INT", -1),
    "num.partitions": ("num_partitions", "INT", 1),
    "default.replication.factor": ("default_replication_factor", "INT", 1),
    "auto.create.topics.enable": ("auto_create_topics_enable", "BOOLEAN", None),
    "min.insync.replicas": ("min_insync_replicas", "INT", 1),
    "log.retention.hours": ("log_retention_hours", "INT", None),
    "log.retention.minutes": ("log_retention_minutes", "INT", None),
    "log.retention.ms": ("log_retention_ms_setting", "LONG", None),
    "log.retention.bytes": ("log_retention_bytes", "LONG", None),
    "log.segment.bytes": ("log_segment_bytes", "INT", 14),
    "log.roll.hours": ("log_roll_hours", "INT", 1),
    "log.roll.ms": ("log_roll_ms", "LONG", None),
    "log.cleanup.policy": ("log_cleanup_policy", "LIST", None),
    "log.retention.check.interval.ms": ("log_retention_check_interval_ms", "LONG", 1),
    "message.max.bytes": ("message_max_bytes", "INT", 0),
    "log.dirs": ("log_dirs", "STRING", None),
    "log.dir": ("log_dir", "STRING", None),
    "replica.lag.time.max.ms": ("replica_lag_time_max_ms", "LONG", 1),
    "unclean.leader.election.enable": ("unclean_leader_election_enable", "BOOLEAN", None),
    "auto.leader.rebalance.enable": ("auto_leader_rebalance_enable", "BOOLEAN", None),
    "leader.imbalance.check.interval.seconds": ("leader_imbalance_check_interval_seconds", "LONG", 1),
    "leader.imbalance.per.broker.percentage": ("leader_imbalance_per_broker_percentage", "INT", 0),
    "dcli.max.partitions": ("max_partitions", "INT", 1),
    # bounds at the edge (docs/broker.md, "Limits"); Kafka's names where Kafka has the setting
    "fetch.max.bytes": ("fetch_max_bytes", "INT", 1024),
    "dcli.fetch.max.wait.ms": ("fetch_max_wait_ms", "INT", 0),
    "group.max.size": ("group_max_size", "INT", 1),
    "dcli.max.groups": ("max_groups", "INT", 1),
    "dcli.max.id.length": ("max_id_length", "INT", 1),
}

# topic config name -> the broker settings it defaults from (the first one set wins)
TOPIC_DEFAULTS_FROM: dict[str, tuple[str, ...]] = {
    "cleanup.policy": ("log.cleanup.policy",),
    "max.message.bytes": ("message.max.bytes",),
    "min.insync.replicas": ("min.insync.replicas",),
    "retention.bytes": ("log.retention.bytes",),
    "retention.ms": ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
    "segment.bytes": ("log.segment.bytes",),
    "segment.ms": ("log.roll.ms", "log.roll.hours"),
    "unclean.leader.election.enable": ("unclean.leader.election.enable",),
}
# topic settings that are not the log's: the broker's replication reads them
_NOT_LOG_SETTINGS = ("min.insync.replicas", "unclean.leader.election.enable")
TOPIC_CONFIG_NAMES = frozenset(TOPIC_DEFAULTS_FROM)


def parse_value(name: str, value: object) -> object:
    """`value` (a string from a file, or a Python value) as the type of setting `name`;
    raises InvalidConfigurationError in Kafka's ConfigException words."""
    _, kind, least = _SETTINGS[name]
    if kind == "STRING":
        return str(value).strip()
    if kind == "LIST":
        items = [p.strip() for p in str(value).split(",") if p.strip()]
        if not items or any(p not in ("compact", "delete") for p in items):
            raise invalid(name, value, "String must be one of: compact, delete")
        return ",".join(items)
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in ("true", "false"):
            raise invalid(name, value, "Expected value to be either true or false")
        return text == "true"
    return parse_number(name, value, kind, least)


@dataclass(frozen=True)
class BrokerConfig:
    """One broker's settings; field defaults are Kafka's (`broker.id` -1: take the node's id)."""

    broker_id: int = -1
    num_partitions: int = 1
    default_replication_factor: int = 1
    auto_create_topics_enable: bool = True
    min_insync_replicas: int = 1
    log_retention_hours: int = 168
    log_retention_minutes: int | None = None
    log_retention_ms_setting: int | None = None
    log_retention_bytes: int = -1
    log_segment_bytes: int = 1 << 30
    log_roll_hours: int = 168
    log_roll_ms: int | None = None
    log_cleanup_policy: str = "delete"
    log_retention_check_interval_ms: int = 300_000
    message_max_bytes: int = 1048588
    log_dirs: str | None = None
    log_dir: str = "/tmp/kafka-logs"
    replica_lag_time_max_ms: int = 30_000
    unclean_leader_election_enable: bool = False
    auto_leader_rebalance_enable: bool = True
    leader_imbalance_check_interval_seconds: int = 300
    leader_imbalance_per_broker_percentage: int = 10
    max_partitions: int = 4096  # not Kafka's: each open partition holds three file descriptors
    fetch_max_bytes: int = MAX_FETCH_BYTES      # Kafka's 55 MiB would not fit one gRPC answer
    fetch_max_wait_ms: int = 30_000             # a long poll's longest wait (Kafka's request.timeout.ms)
    group_max_size: int = 1000                  # Kafka's default is unbounded
    max_groups: int = 10_000                    # groups this broker coordinates at once
    max_id_length: int = 255                    # group, client and member ids (a member id: 64 more)
    explicit: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        by_field = {f: name for name, (f, _, _) in _SETTINGS.items()}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in by_field and value is not None:
                object.__setattr__(self, f.name, parse_value(by_field[f.name], value))
        if self.fetch_max_bytes > MAX_FETCH_BYTES:
            raise invalid("fetch.max.bytes", self.fetch_max_bytes,
                          f"Value must be no more than {MAX_FETCH_BYTES} (one answer of the gRPC API)")
        self.log_config()  # refuse settings the log would refuse, now rather than at first use

    @classmethod
    def from_properties(cls, props: Mapping[str, object], base: BrokerConfig | None = None,
                        ) -> tuple[BrokerConfig, list[str]]:
        """(config, names not known here). Unknown names are returned rather than refused:
        Kafka only warns "The configuration 'x' was supplied but isn't a known config."."""
        values = {}
        unknown = []
        for name, value in props.items():
            if name not in _SETTINGS:
                unknown.append(name)
                continue
            values[_SETTINGS[name][0]] = parse_value(name, value)
        base = base or cls()
        explicit = base.explicit | {n for n in props if n in _SETTINGS}
        return replace(base, **values, explicit=frozenset(explicit)), unknown

    @property
    def log_retention_ms(self) -> int:
        """log.retention.ms, else .minutes, else .hours (Kafka's precedence); -1 = forever."""
        if self.log_retention_ms_setting is not None:
            return self.log_retention_ms_setting
        if self.log_retention_minutes is not None:
            return self.log_retention_minutes * 60_000
        return self.log_retention_hours * _HOUR_MS

    @property
    def log_roll_ms_effective(self) -> int:
        return self.log_roll_ms if self.log_roll_ms is not None else self.log_roll_hours * _HOUR_MS

    @property
    def log_directories(self) -> list[str]:
        """log.dirs, else log.dir (Kafka's rule)."""
        text = self.log_dirs if self.log_dirs is not None else self.log_dir
        return [d.strip() for d in text.split(",") if d.strip()]

    def topic_defaults(self) -> dict[str, str]:
        """Every topic-level setting's broker-wide value, by the topic's name."""
        return {
            "cleanup.policy": self.log_cleanup_policy,
            "max.message.bytes": str(self.message_max_bytes),
            "min.insync.replicas": str(self.min_insync_replicas),
            "retention.bytes": str(self.log_retention_bytes),
            "retention.ms": str(self.log_retention_ms),
            "segment.bytes": str(self.log_segment_bytes),
            "segment.ms": str(self.log_roll_ms_effective),
            "unclean.leader.election.enable": str(self.unclean_leader_election_enable).lower(),
        }

    def topic_default_is_explicit(self, topic_name: str) -> bool:
        return any(n in self.explicit for n in TOPIC_DEFAULTS_FROM[topic_name])

    def log_config(self, overrides: Mapping[str, str] | None = None) -> LogConfig:
        """The LogConfig of a topic with these `overrides` (topic names; min.insync.replicas
        and unclean.leader.election.enable, which are not log settings, are left out)."""
        merged = self.topic_defaults()
        for name in _NOT_LOG_SETTINGS:
            merged.pop(name)
        for name, value in (overrides or {}).items():
            if name not in _NOT_LOG_SETTINGS:
                merged[name] = value
        return LogConfig.from_properties(merged)

    def entries(self) -> list[tuple[str, str, bool]]:
        """(name, value, is_default) of every setting, as DescribeConfigs lists a broker's."""
        out = []
        for name, (f, _, _) in sorted(_SETTINGS.items()):
            value = getattr(self, f)
            if value is None:
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            out.append((name, text, name not in self.explicit))
        return out


def validate_topic_configs(configs: Mapping[str, str], broker: BrokerConfig) -> dict[str, str]:
    """Topic overrides checked by Kafka's rules: known names and values the log accepts."""
    for name, value in configs.items():
        if name not in TOPIC_CONFIG_NAMES:
            raise InvalidConfigurationError(message=f"Unknown topic config name: {name}")
        if name in _NOT_LOG_SETTINGS:
            parse_value(name, value)
    broker.log_config(configs)
    return {str(k): str(v) for k, v in configs.items()}


# -- server.properties -------------------------------------------------------------------------

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _logical_lines(text: str):
    """Java Properties.load's lines: comments and blank lines dropped, a line ending in an
    odd number of backslashes joined with the next (leading blanks of which are dropped)."""
    pending = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip(" \t\f")
        if pending is None and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending = (pending[0] if pending else number, (pending[1] if pending else "") + line[:-1])
            continue
        start, before = pending if pending else (number, "")
        pending = None
        yield start, before + line
    if pending is not None:
        yield pending


def _unescape(text: str, number: int) -> str:
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(text):
            break
        c = text[i]
        if c == "u":
            digits = text[i + 1 : i + 5]
            if len(digits) != 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise InvalidConfigurationError(message=f"line {number}: malformed \\uxxxx encoding")
            out.append(chr(int(digits, 16)))
            i += 5
            continue
        out.append(_ESCAPES.get(c, c))
        i += 1
    return "".join(out)


def parse_properties(text: str) -> dict[str, str]:
    """A Kafka `server.properties` file as name -> value (Java Properties rules: `k=v`,
    `k: v` or `k v`, `#`/`!` comments, backslash continuations and escapes; a later line wins)."""
    props: dict[str, str] = {}
    for number, line in _logical_lines(text):
        i, n = 0, len(line)
        while i < n and line[i] not in "=: \t\f":
            i += 2 if line[i] == "\\" else 1
        key = line[:i]
        while i < n and line[i] in " \t\f":
            i += 1
        if i < n and line[i] in "=:":
            i += 1
            while i < n and line[i] in " \t\f":
                i += 1
        props[_unescape(key, number)] = _unescape(line[i:], number)
    return props


def load_server_properties(text: str, base: BrokerConfig | None = None) -> tuple[BrokerConfig, list[str]]:
    """BrokerConfig from a server.properties text; raises InvalidConfigurationError with one
    line naming the bad setting."""
    return BrokerConfig.from_properties(parse_properties(text), base)
