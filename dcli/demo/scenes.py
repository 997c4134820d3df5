"""The seed's sequences, step by step, and how a state is drawn (text for --script, a rich
table for the live view)."""
from __future__ import annotations

from dcli.demo.driver import Demo

HEADER = ("NODE", "ZNODE", "ROLE", "WATCHES", "NOTIFIED")


def text(demo: Demo) -> str:
    rows = [HEADER, *demo.rows()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    if demo.registry_root is not None:
        lines.append(f"registry {demo.registry_root}/{demo.service}: {' '.join(demo.registry) or '(empty)'}")
    return "\n".join(lines)


def table(demo: Demo, title: str):
    from rich.table import Table

    t = Table(*HEADER, title=title)
    for row in demo.rows():
        style = "bold green" if row[2] == "LEADER" else "dim" if row[2] == "dead" else None
        t.add_row(*row, style=style)
    if demo.registry_root is not None:
        t.caption = f"registry {demo.registry_root}/{demo.service}: {' '.join(demo.registry) or '(empty)'}"
    return t


def election_steps(demo: Demo):
    """(caption, action) pairs: the seed's four election pictures."""
    yield "4 nodes run: the lowest znode leads, every other node watches its predecessor", lambda: None

    def leader_dies():
        demo.dead_leader = demo.leader()
        demo.kill(demo.dead_leader)
    yield "the leader dies: only the next node is notified, and it leads", leader_dies
    yield ("the old leader rejoins: it joins at the end, as a follower",
           lambda: demo.launch(demo.dead_leader))

    def follower_dies():
        live = sorted((n for n in demo.nodes if n.alive), key=lambda n: n.znode)
        demo.kill(live[len(live) // 2])          # one in the middle of the chain
    yield "a non-leader dies: its successor closes the gap", follower_dies


def registry_steps(demo: Demo):
    """The seed's service-registry pictures, in the leader-worker design."""
    yield "4 nodes run: the leader reads the registry, the workers are registered in it", lambda: None
    workers = lambda: sorted((n for n in demo.nodes if n.alive and n.role == "follower"),  # noqa: E731
                             key=lambda n: n.znode)
    demo.gone = []

    def worker_dies():
        demo.gone.append(workers()[1])
        demo.kill(demo.gone[-1])
    yield "a worker dies: its entry leaves the registry", worker_dies
    yield "another worker dies", worker_dies

    def all_rejoin():
        for node in demo.gone:          # one after the other, so that the order is the same each run
            demo.launch(node)
            demo.wait_for(lambda n=node: n.role in ("leader", "follower"))
    yield "all rejoin: they register again", all_rejoin

    def leader_dies():
        demo.kill(demo.leader())
    yield "the leader dies: the next node leads and deregisters itself", leader_dies
