"""Printers for `dcli cluster`: the nodes a command started, and the status table.

simple (the default) is a plain table, one row per node; table draws it with a box; json is one
object per node, one per line.
"""
from __future__ import annotations

import json
import sys

COLUMNS = (("NODE", "id"), ("ADDRESS", "address"), ("ROLE", "role"), ("TERM", "term"),
           ("LEADER", "leader_id"), ("COMMIT", "commit_index"), ("LAST_ZXID", "last_zxid"),
           ("SESSIONS", "sessions"), ("ZNODES", "znodes"), ("CONTROLLER", "controller_id"),
           ("STATE", "state"))
NUMERIC = {"TERM", "LEADER", "COMMIT", "LAST_ZXID", "SESSIONS", "ZNODES", "CONTROLLER", "PID", "MATCH"}


def cell(key: str, value) -> str:
    if value is None or value == "":
        return "-"
    if key == "last_zxid":
        return hex(value)           # as zkCli prints zxids
    if key in ("leader_id", "controller_id") and value == 0:
        return "-"                  # 0: none known
    return str(value)


def status(write_out: str, states) -> None:
    """`cluster status`: one row per node (the NodeState list of LocalCluster.status_all)."""
    if write_out == "json":
        for s in states:
            sys.stdout.write(json.dumps(s.to_json()) + "\n")
        return
    rows = []
    for s in states:
        row = [cell(key, getattr(s, key)) for _, key in COLUMNS]
        if s.error:
            row[-1] += f" ({s.error})"
        rows.append(row)
    _table([title for title, _ in COLUMNS], rows, boxed=write_out == "table")


def nodes(write_out: str, nodes, verb: str) -> None:
    """`cluster up`: the nodes now running and their pids (json: with data dir and log)."""
    if write_out == "json":
        for n in nodes:
            sys.stdout.write(json.dumps({"node": n.id, "address": n.address, "pid": n.pid, "event": verb,
                                         "data_dir": str(n.data_dir), "log": str(n.log)}) + "\n")
        return
    rows = [[str(n.id), n.address, str(n.pid)] for n in nodes]
    _table(["NODE", "ADDRESS", "PID"], rows, boxed=write_out == "table")


def members(write_out: str, members) -> None:
    """`cluster member list|add|remove`: the members as the leader sees them, voters and
    learners (members added but not yet promoted)."""
    if write_out == "json":
        for m in members:
            sys.stdout.write(json.dumps({"node": m.node_id, "address": m.address, "peer_address": m.peer_address,
                                         "role": m.role, "reachable": m.reachable,
                                         "match_index": m.match_index}) + "\n")
        return
    rows = [[str(m.node_id), m.address, m.peer_address or "-", m.role or "-", "yes" if m.reachable else "no",
             str(m.match_index)] for m in members]
    _table(["NODE", "ADDRESS", "PEER", "ROLE", "REACHABLE", "MATCH"], rows, boxed=write_out == "table")


def _table(titles: list[str], rows: list[list[str]], boxed: bool) -> None:
    """A rich table: plain columns for the default output, in a box for `-w table`. Off a
    terminal it is printed at its natural width, never wrapped, without trailing blanks."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.ROUNDED if boxed else None, pad_edge=boxed, show_edge=boxed,
                  header_style="bold" if boxed else "")
    for title in titles:
        table.add_column(title, no_wrap=True, justify="right" if title in NUMERIC else "left")
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console = Console(width=1000, color_system=None)
    with console.capture() as capture:
        console.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in capture.get().splitlines()))
