"""Printers for `dcli kv`: text that shows the quorum arithmetic (simple), one JSON object per
result (json), rich tables for the ring (table, and `ring`/`status` on a terminal).

A quorum line names R, W and N, whether R + W > N holds, and what each replica did:

    R=2 W=2 N=3 · R + W = 4 > N = 3 (strict) · replicas: 3 stored (coordinator), 1 stored, 2 pending
"""
from __future__ import annotations

import base64
import json
import sys

from dcli.output.zk import data_json, data_text


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def err(line: str) -> None:
    sys.stderr.write(line + "\n")


def context_text(context: bytes) -> str:
    return base64.b64encode(context).decode()


def arithmetic(q) -> str:
    total = q.r + q.w
    if total > q.n:
        rule = f"R + W = {total} > N = {q.n}"
    else:
        rule = f"R + W = {total} ≤ N = {q.n}, a read may miss a write"
    return f"R={q.r} W={q.w} N={q.n} · {rule} ({q.consistency})"


def outcome_text(o, coordinator: str) -> str:
    text = f"{o.node} {o.outcome}"
    if o.stand_in:
        text += f" (hint kept by {o.stand_in})"
    if o.node == coordinator and o.outcome == "stored":
        text += " (coordinator)"
    return text


def quorum_line(q, write: bool) -> str:
    if write:
        count = f"W met: {q.acks} of {q.n} stored it" if q.acks >= q.w else f"W not met: {q.acks} stored it"
    else:
        count = f"R met: {q.acks} of {q.n} answered" if q.acks >= q.r else f"R not met: {q.acks} answered"
    return (f"{arithmetic(q)} · {count} · replicas: "
            + ", ".join(outcome_text(o, q.coordinator) for o in q.replicas))


def quorum_json(q) -> dict:
    return {"n": q.n, "r": q.r, "w": q.w, "r_plus_w_gt_n": q.r + q.w > q.n, "consistency": q.consistency,
            "preference": q.preference, "coordinator": q.coordinator, "epoch": q.epoch, "acks": q.acks,
            "replicas": [{"node": o.node, "address": o.address, "outcome": o.outcome,
                          **({"stand_in": o.stand_in} if o.stand_in else {}),
                          **({"detail": o.detail} if o.detail else {})} for o in q.replicas]}


def key_text(key: bytes) -> str:
    return data_text(key)


def version_json(v) -> dict:
    d = {"version": v.dot, "tombstone": v.tombstone}
    if not v.tombstone:
        d.update({"value" if k == "data" else k: x for k, x in data_json(v.value).items()})
    return d


def write_result(result, fmt: str, deleted: bool = False) -> None:
    q = result.quorum
    if fmt == "json":
        out(json.dumps({"key": key_text(result.key), "deleted": deleted, "version": result.version.dot,
                        "siblings": result.siblings, "context": context_text(result.context),
                        "quorum": quorum_json(q)}))
        return
    verb = "Deleted" if deleted else "Stored"
    extra = f", {result.siblings} siblings (concurrent writes)" if result.siblings > 1 else ""
    out(f"{verb} {key_text(result.key)} as version {result.version.dot}{extra}")
    out(quorum_line(q, write=True))


def get_result(result, fmt: str, stats: bool) -> None:
    q = result.quorum
    if fmt == "json":
        values = [version_json(v) for v in result.versions]
        live = [v for v in values if not v["tombstone"]]
        d = {"key": key_text(result.key), "found": result.found, "siblings": values,
             "context": context_text(result.context), "quorum": quorum_json(q)}
        if len(live) == 1:
            d.update({k: v for k, v in live[0].items() if k in ("value", "encoding", "version")})
        out(json.dumps(d))
        return
    for value in result.values:
        out(data_text(value))
    if stats:
        out(f"key = {key_text(result.key)}")
        out(f"versions = {' '.join(v.dot + (' (tombstone)' if v.tombstone else '') for v in result.versions)}")
        out(f"siblings = {len(result.values)}")
        out(f"context = {context_text(result.context)}")
        out(f"quorum = {arithmetic(q)}")
        out(f"preference = {' '.join(q.preference)}")
        out(f"coordinator = {q.coordinator}")
        out("replicas = " + ", ".join(outcome_text(o, q.coordinator) for o in q.replicas))
    else:
        err(quorum_line(q, write=False))
    if result.conflict:
        err(f"{len(result.values)} siblings: concurrent writes. Resolve with "
            f"`dcli kv put KEY VALUE --context {context_text(result.context)}`")


def scan_result(result, fmt: str) -> None:
    if fmt == "json":
        for key, versions in result.entries:
            live = [v for v in versions if not v.tombstone]
            d = {"key": key_text(key), "siblings": [version_json(v) for v in versions]}
            if len(live) == 1:
                d.update({k: v for k, v in version_json(live[0]).items() if k in ("value", "encoding", "version")})
            out(json.dumps(d))
        out(json.dumps({"truncated": result.truncated, "asked": result.asked, "missing": result.missing,
                        "count": len(result.entries)}))
        return
    for key, versions in result.entries:
        values = [data_text(v.value) for v in versions if not v.tombstone]
        out(f"{key_text(key)}\t" + ("\t".join(values) if values else "(deleted)"))
    note = f"{len(result.entries)} key(s) from nodes {', '.join(result.asked)}"
    if result.missing:
        note += f"; not answering: {', '.join(result.missing)} (keys only they hold may be missing)"
    if result.truncated:
        note += "; more: page on with --from past the last key"
    err(note)


# -- the ring ------------------------------------------------------------------------------------

def human_bytes(n: int) -> str:
    if n < 0:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def ring_json(ring) -> dict:
    return {"epoch": ring.epoch, "vnodes": ring.vnodes, "moving": ring.moving, "answered_by": ring.answered_by,
            "nodes": [{"id": n.id, "address": n.address, "up": n.up, "state": n.state, "weight": n.weight,
                       "vnodes": n.vnodes, "share": n.share, "effective": n.effective, "keys": n.keys,
                       "hints": n.hints, "load_bytes": n.load_bytes} for n in ring.nodes],
            "keyspaces": [{"name": k.name, "n": k.n, "r": k.r, "w": k.w, "consistency": k.consistency,
                           "sharding": k.sharding,
                           "shards": [{"start": data_text(s.start), "end": data_text(s.end) if s.HasField("end") else None,
                                       "replicas": list(s.replicas)} for s in k.shards]} for k in ring.keyspaces]}


def ring(ring, fmt: str, keyspace: str) -> None:
    if fmt == "json":
        out(json.dumps(ring_json(ring)))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=160)
    ks = next((k for k in ring.keyspaces if k.name == (keyspace or "default")), ring.keyspaces[0])
    title = (f"ring epoch {ring.epoch}{' (moving ranges)' if ring.moving else ''} · keyspace {ks.name}: "
             f"N={ks.n} R={ks.r} W={ks.w} {ks.consistency}, {ks.sharding} sharding")
    table = Table(title=title, title_justify="left")
    for name, justify in (("node", "right"), ("address", "left"), ("status", "left"), ("weight", "right"),
                          ("vnodes", "right"), ("share", "right"), (f"owns (N={ks.n})", "right"),
                          ("keys", "right"), ("hints", "right")):
        table.add_column(name, justify=justify)
    for n in ring.nodes:
        status = ("[green]up[/]" if n.up else "[red]down[/]") + ("" if n.state == "normal" else f" {n.state}")
        table.add_row(n.id, n.address, status, f"{n.weight:g}", str(n.vnodes), f"{n.share:.1%}",
                      f"{n.effective:.1%}", "?" if n.keys < 0 else str(n.keys), "?" if n.hints < 0 else str(n.hints))
    console.print(table)
    for k in ring.keyspaces:
        if k.sharding == "range":
            for s in k.shards:
                end = data_text(s.end) if s.HasField("end") else "∞"
                console.print(f"  {k.name} shard [{data_text(s.start) or '-∞'}, {end}) → nodes {', '.join(s.replicas)}")
    others = [k for k in ring.keyspaces if k.name != ks.name]
    if others:
        console.print("other keyspaces: " + "; ".join(
            f"{k.name} N={k.n} R={k.r} W={k.w} {k.consistency} {k.sharding}" for k in others))


def status(ring, fmt: str) -> None:
    """nodetool status' layout."""
    if fmt == "json":
        out(json.dumps(ring_json(ring)))
        return
    title = f"Datacenter: local (ring epoch {ring.epoch})"
    out(title)
    out("=" * len(title))
    out("Status=Up/Down")
    out("|/ State=Normal/Leaving/Joining/Moving")
    ks = ring.keyspaces[0] if ring.keyspaces else None
    rows = [("--", "Address", "Load", "Keys", "Tokens", "Owns (effective)", "Host ID", "Weight")]
    for n in ring.nodes:
        state = {"normal": "N", "joining": "J", "leaving": "L"}.get(n.state, "N")
        if ring.moving and n.state == "normal":
            state = "M"
        rows.append((("U" if n.up else "D") + state, n.address, human_bytes(n.load_bytes),
                     "?" if n.keys < 0 else str(n.keys), str(n.vnodes), f"{n.effective:.1%}", n.id, f"{n.weight:g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if ks is not None:
        out("")
        out(f"Keyspace {ks.name}: N={ks.n} R={ks.r} W={ks.w} ({ks.consistency}); owns = share of keys a node "
            f"holds a replica of")


def rebalance_plan(progress, fmt: str) -> None:
    if fmt == "json":
        out(json.dumps({"phase": "plan", "epoch": progress.epoch,
                        "moves": [{"keyspace": m.keyspace, "range": m.range, "before": list(m.before),
                                   "after": list(m.after), "fraction": m.fraction} for m in progress.moves]}))
        return
    by_change: dict = {}
    for m in progress.moves:
        change = (m.keyspace, tuple(sorted(set(m.after) - set(m.before))), tuple(sorted(set(m.before) - set(m.after))))
        count, fraction = by_change.get(change, (0, 0.0))
        by_change[change] = (count + 1, fraction + m.fraction)
    out(f"Epoch {progress.epoch}: {len(progress.moves)} range(s) change replicas")
    for (keyspace, gained, lost), (count, fraction) in sorted(by_change.items()):
        share = f", {fraction:.1%} of the ring" if fraction else ""
        what = "; ".join(x for x in (f"to node {','.join(gained)}" if gained else "",
                                     f"from node {','.join(lost)}" if lost else "") if x)
        out(f"  {keyspace}: {count} range(s){share}: {what}")


def progress_line(p, fmt: str) -> None:
    if fmt == "json":
        out(json.dumps({"phase": p.phase, "epoch": p.epoch, "ranges_total": p.ranges_total,
                        "ranges_done": p.ranges_done, "keys_moved": p.keys_moved, "message": p.message,
                        "node": p.node}))
    elif p.phase == "announce":
        out(f"announce: epoch {p.epoch}: {p.message}")
    elif p.phase == "done":
        out(f"done: epoch {p.epoch}: {p.message}; {p.ranges_done} range copies fetched from old replicas, "
            f"{p.keys_moved} key(s) written to new owners")
