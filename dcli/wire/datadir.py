"""Where dcli keeps its data by default: one rule for the server and the local cluster manager.

    >>> node_data_dir(1)            # doctest: +SKIP
    PosixPath('/home/ann/.local/share/dcli/node-1')
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def base_dir() -> Path:
    """dcli's directory under the platform's per-user data directory ($XDG_DATA_HOME honoured)."""
    base = os.environ.get("XDG_DATA_HOME") or (Path.home() / ".local" / "share")
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    return Path(base) / "dcli"


def node_data_dir(node_id: int = 1) -> Path:
    """A node's data directory when none is given (`dcli server start`, the embedded server)."""
    return base_dir() / f"node-{node_id}"


def cluster_dir() -> Path:
    """Where `dcli cluster up` keeps its nodes when no --dir is given."""
    return base_dir() / "cluster"
