"""What the broker's methods take and give back: topic requests and results, produce, fetch and
offset results, and the partition and topic descriptions that metadata answers carry.

Errors travel inside the results (a BrokerError per partition or per topic, Kafka's codes), so
one bad partition does not fail a request's others.

    [result] = await broker.produce(-1, 30000, [("chat", 0, batch_bytes)])
    if result.error is None:
        print(result.base_offset)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from dcli.wire.errors import BrokerError, KafkaStorageError

DEFAULT_PARTITION_MAX_BYTES = 1 << 20    # max.partition.fetch.bytes
MAX_FETCH_BYTES = 32 << 20               # a fetch answer stays well inside one gRPC message
EARLIEST, LATEST = -2, -1


# -- requests and results ---------------------------------------------------------------------


@dataclass
class NewTopic:
    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    configs: Mapping[str, str] = field(default_factory=dict)
    assignments: Mapping[int, list[int]] = field(default_factory=dict)


@dataclass
class TopicResult:
    name: str
    topic_id: str = ""
    error: BrokerError | None = None


@dataclass
class PartitionDescription:
    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()


@dataclass
class TopicDescription:
    name: str
    topic_id: str = ""
    error: BrokerError | None = None
    is_internal: bool = False
    partitions: list[PartitionDescription] = field(default_factory=list)
    configs: dict[str, str] = field(default_factory=dict)   # the non-default ones


@dataclass
class ConfigValue:
    name: str
    value: str
    is_default: bool
    read_only: bool = False


@dataclass
class ProduceResult:
    topic: str
    partition: int
    error: BrokerError | None = None
    base_offset: int = -1
    log_start_offset: int = -1


@dataclass
class FetchItem:
    topic: str
    partition: int
    fetch_offset: int
    partition_max_bytes: int = DEFAULT_PARTITION_MAX_BYTES
    current_leader_epoch: int = -1


@dataclass
class FetchResult:
    topic: str
    partition: int
    error: BrokerError | None = None
    high_watermark: int = -1
    log_start_offset: int = -1
    log_end_offset: int = -1
    records: bytes = b""


@dataclass
class OffsetResult:
    topic: str
    partition: int
    error: BrokerError | None = None
    offset: int = -1
    timestamp: int = -1


def storage_error(exc: BaseException) -> KafkaStorageError:
    return KafkaStorageError(message=f"Disk error when trying to access log file on the disk: {exc}")
