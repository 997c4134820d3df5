"""Printers for `dcli user` and `dcli auth`: etcdctl's lines by default (`User root created`,
`Authentication Enabled`), one JSON object per line with `-w json`, a box with `-w table`."""
from __future__ import annotations

import json
import sys


def done(write_out: str, line: str, **fields) -> None:
    """One change made: etcdctl's sentence, or its fields as JSON."""
    if write_out == "json":
        sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    else:
        sys.stdout.write(line + "\n")


def users(write_out: str, users: list[tuple[str, list[str]]]) -> None:
    """`user list`: one name a line (etcdctl), roles beside them in a table."""
    if write_out == "json":
        for name, roles in users:
            sys.stdout.write(json.dumps({"user": name, "roles": roles}) + "\n")
        return
    if write_out == "table":
        from dcli.output.cluster import _table

        _table(["USER", "ROLES"], [[name, ",".join(roles) or "-"] for name, roles in users], boxed=True)
        return
    for name, _ in users:
        sys.stdout.write(name + "\n")


def status(write_out: str, enabled: bool, revision: int) -> None:
    """`auth status`, as etcdctl prints it."""
    if write_out == "json":
        sys.stdout.write(json.dumps({"enabled": enabled, "revision": revision}) + "\n")
        return
    sys.stdout.write(f"Authentication Status: {'true' if enabled else 'false'}\nAuthRevision: {revision}\n")
