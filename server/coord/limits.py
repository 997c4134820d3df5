"""The configurable limits of the coordination service, with ZooKeeper's defaults.

    >>> limits = Limits(max_data_bytes=1024)
    >>> limits.negotiate_timeout(100), limits.negotiate_timeout(10_000), limits.negotiate_timeout(10**6)
    (4000, 10000, 40000)
"""
from __future__ import annotations

from dataclasses import dataclass

# ZooKeeper keeps a TTL in the low 40 bits of the ephemeral owner (EphemeralType.TTL), hence this
# maximum and the exact message zkCli prints when it is exceeded.
MAX_TTL_MS = (1 << 40) - 1
TTL_RANGE_MESSAGE = f"ttl must be positive and cannot be larger than: {MAX_TTL_MS}"
TTL_EPHEMERAL_MESSAGE = "TTLs cannot be used with Ephemeral znodes"
TTL_CONTAINER_MESSAGE = "TTLs cannot be used with Container znodes"
# ZooKeeper has no CreateMode for a sequential or ephemeral container (zkCli refuses `-c -s`/`-c -e`).
CONTAINER_MODE_MESSAGE = "Containers cannot be ephemeral or sequential"

SYSTEM_ROOT = "/zookeeper"
# ZooKeeper's DataTree.isSpecialPath: these can never be deleted.
SPECIAL_PATHS = ("/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota")


@dataclass
class Limits:
    max_data_bytes: int = 1024 * 1024          # znode data limit
    min_session_timeout_ms: int = 4000          # ZooKeeper's defaults for tickTime 2000
    max_session_timeout_ms: int = 40000
    container_check_interval_ms: int = 60000    # ZooKeeper's container/TTL sweep period
    ttl_enabled: bool = True                    # ZooKeeper's extendedTypesEnabled
    max_path_bytes: int = 4096                  # one path (PATH_MAX); ZooKeeper bounds it by jute.maxbuffer
    max_watches_per_session: int = 100_000      # 0: no limit
    max_outstanding_per_session: int = 1000     # requests read and not yet answered (globalOutstandingLimit)

    def negotiate_timeout(self, requested_ms: int) -> int:
        """The session timeout the server grants: the request clamped to [min, max]."""
        return max(self.min_session_timeout_ms, min(self.max_session_timeout_ms, requested_ms))


def in_system_tree(path: str) -> bool:
    """True for /zookeeper and everything below it (not for /zookeeper0000000001)."""
    return path == SYSTEM_ROOT or path.startswith(SYSTEM_ROOT + "/")
