"""`dcli kafka consumer-groups` and `kafka-consumer-groups`: list, describe and delete consumer
groups and reset their offsets, with kafka-consumer-groups' options, views and exit codes.

    $ kafka-consumer-groups --bootstrap-server 127.0.0.1:7181 --describe --group readers
    GROUP    TOPIC    PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST  CLIENT-ID
    ...

A reset is a dry run unless --execute is given, and is refused for a group with live members.
"""
from __future__ import annotations

from typing import Optional

import typer

from dcli.cli.kafka.options import BootstrapOption, bootstrap, printer
from dcli.wire import errors

ACTIONS = "--list, --describe, --delete, --reset-offsets, --delete-offsets"
GROUP_MISSING = 3           # kafka-consumer-groups' exit codes
GROUP_ACTIVE = 4


def consumer_groups(ctx: typer.Context, bootstrap_server: Optional[str] = BootstrapOption,
                    list_: bool = typer.Option(False, "--list", help="List all consumer groups."),
                    describe: bool = typer.Option(False, "--describe", help="Describe groups: offsets and lag."),
                    delete: bool = typer.Option(False, "--delete", help="Delete inactive groups."),
                    reset_offsets: bool = typer.Option(False, "--reset-offsets", help="Reset a group's offsets."),
                    group: Optional[list[str]] = typer.Option(None, "--group", metavar="consumer group"),
                    all_groups: bool = typer.Option(False, "--all-groups"),
                    topic: Optional[str] = typer.Option(None, "--topic", metavar="topic[:p,p]"),
                    all_topics: bool = typer.Option(False, "--all-topics"),
                    members: bool = typer.Option(False, "--members"),
                    state: bool = typer.Option(False, "--state"),
                    offsets_view: bool = typer.Option(False, "--offsets"),
                    verbose: bool = typer.Option(False, "--verbose"),
                    to_earliest: bool = typer.Option(False, "--to-earliest"),
                    to_latest: bool = typer.Option(False, "--to-latest"),
                    to_current: bool = typer.Option(False, "--to-current"),
                    to_offset: Optional[int] = typer.Option(None, "--to-offset", metavar="offset"),
                    shift_by: Optional[int] = typer.Option(None, "--shift-by", metavar="n"),
                    dry_run: bool = typer.Option(False, "--dry-run"),
                    execute: bool = typer.Option(False, "--execute")) -> None:
    """List, describe, delete consumer groups and reset their offsets: kafka-consumer-groups."""
    if sum((list_, describe, delete, reset_offsets)) != 1:
        raise errors.UsageError(f"Command must include exactly one action: {ACTIONS}")
    from dcli.client.admin import Admin

    p = printer(ctx)
    with Admin(bootstrap(ctx, bootstrap_server)) as admin:
        if list_:
            p.groups(admin.list_groups(), with_state=state)
            return
        groups = [g.group_id for g in admin.list_groups()] if all_groups else list(group or [])
        if not groups:
            raise errors.UsageError("Option [describe|delete|reset-offsets] takes one of these options: "
                                    "--all-groups, --group")
        if describe:
            view = "members" if members else "state" if state else "offsets"
            raise typer.Exit(describe_groups(admin, p, groups, view, verbose))
        if delete:
            results = admin.delete_groups(groups)
            failed = [r for r in results if r.error_code]
            p.groups_deleted(groups, failed)
            raise typer.Exit(1 if failed else 0)
        scenarios = sum((to_earliest, to_latest, to_current, to_offset is not None, shift_by is not None))
        if scenarios != 1:
            raise errors.UsageError("Option [reset-offsets] takes exactly one of these options: --to-datetime, "
                                    "--by-duration, --to-earliest, --to-latest, --shift-by, --from-file, "
                                    "--to-current, --to-offset")
        if not topic and not all_topics:
            raise errors.UsageError("Option [reset-offsets] takes one of these options: --all-topics, --topic")
        if dry_run and execute:
            raise errors.UsageError("Option [reset-offsets] takes only one of these options: --dry-run, --execute")
        if not execute and not dry_run:
            p.reset_dry_run_warning()
        target = ("earliest" if to_earliest else "latest" if to_latest else "current" if to_current
                  else ("offset", to_offset) if to_offset is not None else ("shift", shift_by))
        raise typer.Exit(reset_group_offsets(admin, p, groups, topic, all_topics, target, execute))


def describe_groups(admin, p, groups: list[str], view: str, verbose: bool) -> int:
    """Print each group in `view` (offsets, members or state); the exit status."""
    from dcli.wire.consumer_protocol import decode_assignment

    code = 0
    for d in admin.describe_groups(groups):
        committed = admin.committed_offsets(d.group_id)
        if d.state == "Dead" and not committed:
            p.group_missing(d.group_id)
            code = GROUP_MISSING
            continue
        p.group_notice(d)
        owned = []      # (member, [(topic, partition)])
        for m in d.members:
            parts = decode_assignment(m.assignment).partitions if m.assignment else {}
            owned.append((m, sorted((t, n) for t, ns in parts.items() for n in ns)))
        if view == "state":
            node_id, address = admin.find_coordinator(d.group_id)
            p.group_state(d, f"{address}  ({node_id})")
        elif view == "members":
            p.group_members(d, owned, verbose)
        else:
            rows = offset_rows(owned, committed)
            ends = admin.list_offsets([tp for tp, _ in rows], -1) if rows else {}
            p.group_offsets(d, rows, committed, ends)
    return code


def offset_rows(owned, committed: dict) -> list:
    """[((topic, partition), member or None)]: the members' partitions, busiest member first, then
    the partitions with a committed offset and no owner."""
    rows = []
    seen = set()
    for m, parts in sorted(owned, key=lambda mp: -len(mp[1])):
        for tp in sorted(parts, key=lambda tp: tp[1]):
            rows.append((tp, m))
            seen.add(tp)
    rows += [(tp, None) for tp in sorted(committed) if tp not in seen]
    return rows


def reset_group_offsets(admin, p, groups: list[str], topic: Optional[str], all_topics: bool, target,
                        execute: bool) -> int:
    code = 0
    for d in admin.describe_groups(groups):
        if d.state not in ("Empty", "Dead"):
            p.reset_refused(d)
            code = GROUP_ACTIVE
            continue
        committed = admin.committed_offsets(d.group_id)
        if all_topics:
            parts = sorted(committed)
        else:
            name, _, plist = topic.partition(":")
            if plist:
                parts = [(name, int(n)) for n in plist.split(",")]
            else:
                [t] = admin.describe_topics([name])
                parts = [(name, q.partition) for q in sorted(t.partitions, key=lambda q: q.partition)]
        new = new_offsets(parts, target, committed, admin.list_offsets(parts, -2) if parts else {},
                          admin.list_offsets(parts, -1) if parts else {})
        if execute:
            admin.commit_offsets(d.group_id, new)
        p.offsets_reset(d.group_id, new)
    return code


def new_offsets(parts, target, committed: dict, earliest: dict, latest: dict) -> dict:
    """Each partition's offset after the reset `target`, clamped to the log as Kafka does."""
    new = {}
    for tp in parts:
        if target == "earliest":
            offset = earliest[tp]
        elif target == "latest":
            offset = latest[tp]
        elif target == "current":
            offset = committed.get(tp, latest[tp])
        elif target[0] == "offset":
            offset = target[1]
        else:
            offset = committed.get(tp, latest[tp]) + target[1]
        new[tp] = min(max(offset, earliest[tp]), latest[tp])
    return new
