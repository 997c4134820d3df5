"""The broker cluster's metadata in the coordination tree: its paths and JSON, as Kafka kept them
in ZooKeeper (one place, so that the controller, the brokers and the tools agree).

    /brokers/ids/<id>                          ephemeral, one per live broker
        {"version":4,"host":"127.0.0.1","port":7181,"jmx_port":-1,"timestamp":"1700000000000",
         "endpoints":["PLAINTEXT://127.0.0.1:7181"],
         "listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"rack":null}
    /brokers/topics/<topic>                    the replica assignment, preferred leader first
        {"version":3,"topic_id":"NPmZHyhbR9y00wMglMH2sg","partitions":{"0":[1,2,3],"1":[2,3,1]},
         "adding_replicas":{},"removing_replicas":{}}
    /brokers/topics/<topic>/partitions/<p>/state     written by the controller (and by the
        {"controller_epoch":3,"leader":1,"version":1,   leader for its ISR changes),
         "leader_epoch":0,"isr":[1,2,3]}                always with the znode version read
    /config/topics/<topic>                     the topic's config overrides
        {"version":1,"config":{"unclean.leader.election.enable":"true"}}
    /controller/c_0000000007                   election candidates (LeaderElection); the lowest
        {"version":1,"brokerid":2,"timestamp":"1700000000000"}     is the controller
    /controller_epoch                          "3": bumped by each new controller; every
                                               controller write checks its znode version

    state = PartitionState(leader=1, leader_epoch=0, isr=(1, 2, 3), controller_epoch=3)
    zk.create(state_path("chat", 0), state.encode(), makepath=True)
    PartitionState.decode(zk.get(state_path("chat", 0))[0]) == state

`leader` is -1 (NO_LEADER) when the partition has no leader (offline). Decoding refuses what it
cannot read with MetadataError, naming the path. Only codecs and small readers live here; the
controller decides what to write.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

from dcli.wire import errors

if TYPE_CHECKING:
    from dcli.client import CoordClient

BROKERS = "/brokers"
BROKER_IDS = "/brokers/ids"
TOPICS = "/brokers/topics"
CONFIG_TOPICS = "/config/topics"
CONTROLLER = "/controller"
CONTROLLER_EPOCH = "/controller_epoch"
NO_LEADER = -1
UNCLEAN = "unclean.leader.election.enable"

_STATE = re.compile(r"^/brokers/topics/([^/]+)/partitions/(\d+)/state$")


class MetadataError(ValueError):
    """A znode under the broker's paths holds something that is not what this module writes."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"cannot read {path}: {problem}")
        self.path = path


def broker_path(broker_id: int) -> str:
    return f"{BROKER_IDS}/{broker_id}"


def topic_path(topic: str) -> str:
    return f"{TOPICS}/{topic}"


def partitions_path(topic: str) -> str:
    return f"{TOPICS}/{topic}/partitions"


def partition_path(topic: str, partition: int) -> str:
    return f"{TOPICS}/{topic}/partitions/{partition}"


def state_path(topic: str, partition: int) -> str:
    return f"{TOPICS}/{topic}/partitions/{partition}/state"


def topic_config_path(topic: str) -> str:
    return f"{CONFIG_TOPICS}/{topic}"


def parse_state_path(path: str) -> tuple[str, int] | None:
    """(topic, partition) of a partition state path, else None."""
    m = _STATE.match(path)
    return (m.group(1), int(m.group(2))) if m else None


def _now_ms() -> str:
    return str(int(time.time() * 1000))


def _load(path: str, data: bytes | None) -> dict:
    try:
        value = json.loads((data or b"").decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise MetadataError(path, f"not JSON ({e})") from None
    if not isinstance(value, dict):
        raise MetadataError(path, "not a JSON object")
    return value


def _dump(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _ids(path: str, value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(b, int) and not isinstance(b, bool) for b in value):
        raise MetadataError(path, f"{what} is not a list of broker ids")
    return tuple(value)


@dataclass(frozen=True)
class BrokerInfo:
    """A live broker, as it registers itself under /brokers/ids."""

    broker_id: int
    host: str
    port: int
    timestamp_ms: str = field(default_factory=_now_ms)

    def encode(self) -> bytes:
        endpoint = f"PLAINTEXT://{self.host}:{self.port}"
        return _dump({"version": 4, "host": self.host, "port": self.port, "jmx_port": -1,
                      "timestamp": self.timestamp_ms, "endpoints": [endpoint],
                      "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT"}, "rack": None})

    @classmethod
    def decode(cls, broker_id: int, data: bytes | None) -> BrokerInfo:
        path = broker_path(broker_id)
        d = _load(path, data)
        host, port = d.get("host"), d.get("port")
        if not isinstance(host, str) or not isinstance(port, int):
            raise MetadataError(path, "no host and port")
        return cls(broker_id, host, port, str(d.get("timestamp", "")))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class TopicAssignment:
    """A topic: its id, its partitions' replica lists (`replicas[p]`, preferred leader first)
    and its config overrides. The broker's one topic metadata type; the tree keeps the first
    two at /brokers/topics/<topic> (`encode`) and the configs apart (`encode_topic_config`)."""

    name: str
    topic_id: str
    replicas: tuple[tuple[int, ...], ...]
    configs: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def partitions(self) -> int:
        return len(self.replicas)

    @property
    def replication_factor(self) -> int:
        return len(self.replicas[0]) if self.replicas else 0

    def encode(self) -> bytes:
        return _dump({"version": 3, "topic_id": self.topic_id,
                      "partitions": {str(p): list(r) for p, r in enumerate(self.replicas)},
                      "adding_replicas": {}, "removing_replicas": {}})

    @classmethod
    def decode(cls, name: str, data: bytes | None) -> TopicAssignment:
        path = topic_path(name)
        d = _load(path, data)
        parts = d.get("partitions")
        if not isinstance(parts, dict) or not all(str(k).isdigit() for k in parts):
            raise MetadataError(path, "no partitions map")
        numbers = sorted(int(k) for k in parts)
        if numbers != list(range(len(numbers))):
            raise MetadataError(path, f"partitions are not 0..n-1: {numbers}")
        replicas = tuple(_ids(path, parts[str(p)], f"partition {p}") for p in numbers)
        return cls(name, str(d.get("topic_id", "")), replicas)

    def with_configs(self, configs: Mapping[str, str]) -> TopicAssignment:
        return TopicAssignment(self.name, self.topic_id, self.replicas, dict(configs))


@dataclass(frozen=True)
class PartitionState:
    """Who leads a partition, in which leader epoch, with which in-sync replicas; and the epoch
    of the controller that wrote it."""

    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    controller_epoch: int

    @property
    def online(self) -> bool:
        return self.leader != NO_LEADER

    def encode(self) -> bytes:
        return _dump({"controller_epoch": self.controller_epoch, "leader": self.leader,
                      "version": 1, "leader_epoch": self.leader_epoch, "isr": list(self.isr)})

    @classmethod
    def decode(cls, data: bytes | None, path: str = "partition state") -> PartitionState:
        d = _load(path, data)
        try:
            leader, epoch, ce = int(d["leader"]), int(d["leader_epoch"]), int(d["controller_epoch"])
        except (KeyError, TypeError, ValueError):
            raise MetadataError(path, "leader, leader_epoch or controller_epoch missing") from None
        return cls(leader, epoch, _ids(path, d.get("isr"), "isr"), ce)


def encode_topic_config(configs: Mapping[str, str]) -> bytes:
    return _dump({"version": 1, "config": {str(k): str(v) for k, v in configs.items()}})


def decode_topic_config(topic: str, data: bytes | None) -> dict[str, str]:
    path = topic_config_path(topic)
    d = _load(path, data)
    config = d.get("config", {})
    if not isinstance(config, dict):
        raise MetadataError(path, "config is not a JSON object")
    return {str(k): str(v) for k, v in config.items()}


def encode_controller(broker_id: int) -> str:
    """What a controller candidate writes into its election znode."""
    return _dump({"version": 1, "brokerid": broker_id, "timestamp": _now_ms()}).decode()


def decode_controller(data: bytes | str | None) -> int:
    """The broker id in an election znode (0 if it cannot be read)."""
    try:
        raw = data.encode() if isinstance(data, str) else data
        return int(_load(CONTROLLER, raw).get("brokerid", 0))
    except (MetadataError, TypeError, ValueError):
        return 0


def encode_epoch(epoch: int) -> bytes:
    return str(epoch).encode()


def decode_epoch(data: bytes | None) -> int:
    try:
        return int((data or b"0").decode() or "0")
    except (UnicodeDecodeError, ValueError):
        raise MetadataError(CONTROLLER_EPOCH, f"not an integer: {data!r}") from None


# -- readers (a CoordClient on the tree: a node's own, in process, or one over the network) -----


def live_brokers(client: CoordClient, watch=None) -> list[int]:
    """The registered brokers' ids, sorted."""
    try:
        kids = client.get_children(BROKER_IDS, watch=watch)
    except errors.NoNodeError:
        if watch is not None:
            client.exists(BROKER_IDS, watch=watch)
        return []
    return sorted(int(k) for k in kids if k.isdigit())


def topic_names(client: CoordClient) -> list[str]:
    try:
        return sorted(client.get_children(TOPICS))
    except errors.NoNodeError:
        return []


def read_assignment(client: CoordClient, topic: str) -> TopicAssignment | None:
    try:
        data, _ = client.get(topic_path(topic))
    except errors.NoNodeError:
        return None
    return TopicAssignment.decode(topic, data)


def read_state(client: CoordClient, topic: str, partition: int) -> tuple[PartitionState, int] | None:
    """(state, znode version), or None when the partition has no state yet."""
    path = state_path(topic, partition)
    try:
        data, stat = client.get(path)
    except errors.NoNodeError:
        return None
    return PartitionState.decode(data, path), stat.version


def read_topic_config(client: CoordClient, topic: str) -> dict[str, str]:
    try:
        data, _ = client.get(topic_config_path(topic))
    except errors.NoNodeError:
        return {}
    return decode_topic_config(topic, data)


def read_controller_epoch(client: CoordClient) -> tuple[int, int] | None:
    """(epoch, znode version), or None before the first controller."""
    try:
        data, stat = client.get(CONTROLLER_EPOCH)
    except errors.NoNodeError:
        return None
    return decode_epoch(data), stat.version
