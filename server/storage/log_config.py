"""A topic's log settings (Kafka's LogConfig): the fields the partition log uses, Kafka's
defaults, and `from_properties` for Kafka's names with its ConfigException wording."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

from dcli.wire.errors import InvalidConfigurationError

_DAY_MS = 24 * 60 * 60 * 1000

# Kafka's topic config name -> (field, type, smallest allowed value), as LogConfig.java has them.
_PROPERTIES = {
    "segment.bytes": ("segment_bytes", "INT", 14),
    "segment.ms": ("segment_ms", "LONG", 1),
    "retention.ms": ("retention_ms", "LONG", -1),
    "retention.bytes": ("retention_bytes", "LONG", None),
    "index.interval.bytes": ("index_interval_bytes", "INT", 0),
    "cleanup.policy": ("cleanup_policy", "LIST", None),
    "delete.retention.ms": ("delete_retention_ms", "LONG", 0),
    "max.message.bytes": ("max_message_bytes", "INT", 0),
}
_RANGES = {"INT": (-(2**31), 2**31 - 1), "LONG": (-(2**63), 2**63 - 1)}
_POLICIES = ("compact", "delete")


def invalid(name: str, value: object, why: str) -> InvalidConfigurationError:
    """Kafka's ConfigException words: `Invalid value V for configuration N: why`."""
    return InvalidConfigurationError(message=f"Invalid value {value} for configuration {name}: {why}")


def parse_number(name: str, value: object, kind: str, least: int | None) -> int:
    """A Kafka INT or LONG setting from a string or an int (not a bool or 1.5), range-checked."""
    try:
        if isinstance(value, (bool, float)):
            raise ValueError
        number = int(value.strip()) if isinstance(value, str) else int(value)
        if number != value and not isinstance(value, str):
            raise ValueError
    except (TypeError, ValueError):
        raise invalid(name, value, f"Not a number of type {kind}") from None
    low, high = _RANGES[kind]
    if not low <= number <= high:
        raise invalid(name, value, f"Not a number of type {kind}")
    if least is not None and number < least:
        raise invalid(name, value, f"Value must be at least {least}")
    return number


def _parse(name: str, value: object) -> object:
    _, kind, least = _PROPERTIES[name]
    if kind == "LIST":
        items = [p.strip() for p in str(value).split(",")] if isinstance(value, str) else list(value)
        if not items or any(p not in _POLICIES for p in items):
            raise invalid(name, value, "String must be one of: " + ", ".join(_POLICIES))
        return ",".join(sorted(set(items)))
    return parse_number(name, value, kind, least)


@dataclass(frozen=True)
class LogConfig:
    """A topic's log settings, with Kafka's defaults. `from_properties` takes Kafka's names."""

    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * _DAY_MS
    retention_ms: int = 7 * _DAY_MS  # -1: keep forever
    retention_bytes: int = -1  # -1: no size limit
    index_interval_bytes: int = 4096
    cleanup_policy: str = "delete"  # "delete", "compact" or "compact,delete"
    delete_retention_ms: int = _DAY_MS
    max_message_bytes: int = 1048588

    def __post_init__(self) -> None:
        by_field = {f: name for name, (f, _, _) in _PROPERTIES.items()}
        for f in fields(self):
            parsed = _parse(by_field[f.name], getattr(self, f.name))
            object.__setattr__(self, f.name, parsed)

    @classmethod
    def from_properties(cls, props: Mapping[str, object], base: LogConfig | None = None) -> LogConfig:
        """`base` (default: Kafka's defaults) with Kafka-named overrides such as
        {"segment.bytes": "1048576", "cleanup.policy": "compact"}."""
        values = {f.name: getattr(base or cls(), f.name) for f in fields(cls)}
        for name, value in props.items():
            if name not in _PROPERTIES:
                raise InvalidConfigurationError(message=f"Unknown topic config name: {name}")
            values[_PROPERTIES[name][0]] = _parse(name, value)
        return cls(**values)

    @property
    def compacts(self) -> bool:
        return "compact" in self.cleanup_policy.split(",")

    @property
    def deletes(self) -> bool:
        return "delete" in self.cleanup_policy.split(",")
