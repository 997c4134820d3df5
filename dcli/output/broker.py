"""Printers for `dcli kafka` and the kafka-* scripts: the Kafka tools' own text, character for
character where kafka.md records it (simple), one JSON object per result (json). One method per
kind of result; the commands never format text themselves.

    p = printer_for(settings.resolved_write_out())
    p.topic_names(["chat", "orders"])           # chat\\norders\\n

`table` prints the tools' text too: kafka-topics' and kafka-consumer-groups' lines are already
their tables, and scripts written against the Kafka tools read them. A result with no JSON form
(created, deleted, reset) prints the tools' text in every format.
"""
from __future__ import annotations

import base64
import json
import sys

RESET_WARNING = ("WARN: No action will be performed as the --execute option is missing.In a future major "
                 "release, the default behavior of this command will be to prompt the user before executing "
                 "the reset rather than doing a dry run. You should add the --dry-run option explicitly if you "
                 "are scripting this command and want to keep the current default behavior without prompting.")
FORMATTER_DEFAULTS = {"print.timestamp": "false", "print.key": "false", "print.value": "true",
                      "print.partition": "false", "print.offset": "false", "print.headers": "false",
                      "print.epoch": "false", "key.separator": "\t", "line.separator": "\n",
                      "headers.separator": ",", "null.literal": "null"}
GROUP_ERRORS = {68: "GroupNotEmptyException", 69: "GroupIdNotFoundException"}


def out(text: str) -> None:
    sys.stdout.write(text)


def err(text: str) -> None:
    sys.stderr.write(text)


class MessageFormatter:
    """Kafka's DefaultMessageFormatter: the enabled fields in Kafka's order, set by the console
    consumer's --property items (`print.key=true`, `key.separator=:`, ...)."""

    def __init__(self, props: dict):
        from dcli.wire import errors

        unknown = set(props) - set(FORMATTER_DEFAULTS)
        if unknown:
            raise errors.UsageError(f"Unknown formatter property: {sorted(unknown)[0]}")
        p = {**FORMATTER_DEFAULTS, **props}
        self.flags = {k: p[k].lower() == "true" for k in FORMATTER_DEFAULTS if k.startswith("print.")}
        self.sep, self.line_sep = p["key.separator"], p["line.separator"]
        self.headers_sep, self.null = p["headers.separator"], p["null.literal"]

    def _text(self, b: bytes | None) -> str:
        return self.null if b is None else b.decode("utf-8", errors="replace")

    def format(self, r) -> str:
        fields = []
        f = self.flags
        if f["print.timestamp"]:
            kind = "LogAppendTime" if r.timestamp_type == 1 else "CreateTime"
            fields.append(f"{kind}:{r.timestamp}" if r.timestamp >= 0 else "NO_TIMESTAMP")
        if f["print.partition"]:
            fields.append(f"Partition:{r.partition}")
        if f["print.offset"]:
            fields.append(f"Offset:{r.offset}")
        if f["print.epoch"]:
            fields.append(f"Epoch:{r.leader_epoch}" if r.leader_epoch >= 0 else "Epoch:NOT_PRESENT")
        if f["print.headers"]:
            fields.append(self.headers_sep.join(f"{k}:{self._text(v)}" for k, v in r.headers) or "NO_HEADERS")
        if f["print.key"]:
            fields.append(self._text(r.key))
        if f["print.value"]:
            return self.sep.join(fields + [self._text(r.value)]) + self.line_sep
        return self.sep.join(fields)         # Kafka's quirk: no line separator without the value


def record_json(r) -> str:
    def text(b):
        if b is None:
            return None
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(b).decode()}
    return json.dumps({"topic": r.topic, "partition": r.partition, "offset": r.offset,
                       "timestamp": r.timestamp, "key": text(r.key), "value": text(r.value),
                       "headers": {k: text(v) for k, v in r.headers}}, ensure_ascii=False)


def _cells(widths: list[int], cells: list[str]) -> str:
    return " ".join(f"{c:<{w}}" for c, w in zip(cells[:-1], widths)) + " " + cells[-1]


def _size(b: bytes | None) -> str:
    return "null" if b is None else f"{len(b)} bytes"


class TextPrinter:
    """The Kafka tools' text."""

    # ---- kafka-topics ----

    def topic_created(self, name: str) -> None:
        out(f"Created topic {name}.\n")

    def topic_warning(self, warning: str) -> None:
        out(warning + "\n")

    def topic_names(self, names: list[str]) -> None:
        out("\n".join(names) + "\n")

    def topics_described(self, topics, under_replicated: bool = False, unavailable: bool = False,
                         with_overrides: bool = False) -> None:
        """`topics`: TopicDescriptions; the flags are kafka-topics' --describe filters."""
        lines = []
        partition_filter = under_replicated or unavailable
        for t in topics:
            if with_overrides and not t.configs:
                continue
            parts = sorted(t.partitions, key=lambda p: p.partition)
            if not partition_filter:
                rf = len(parts[0].replicas) if parts else 0
                configs = ",".join(f"{k}={v}" for k, v in sorted(t.configs.items()))
                lines.append(f"Topic: {t.name}\tTopicId: {t.topic_id}\tPartitionCount: {len(parts)}\t"
                             f"ReplicationFactor: {rf}\tConfigs: {configs}")
            if with_overrides:
                continue
            for p in parts:
                if under_replicated and not len(p.isr) < len(p.replicas):
                    continue
                if unavailable and p.leader >= 0:
                    continue
                leader = str(p.leader) if p.leader >= 0 else "none"
                lines.append(f"\tTopic: {t.name}\tPartition: {p.partition}\tLeader: {leader}\t"
                             f"Replicas: {','.join(map(str, p.replicas))}\tIsr: {','.join(map(str, p.isr))}")
        out("".join(line + "\n" for line in lines))

    def topic_command_error(self, message: str) -> None:
        out(f"Error while executing topic command : {message}\n")

    # ---- kafka-console-producer ----

    def producer_prompt(self) -> None:
        out(">")
        sys.stdout.flush()

    def acknowledged(self, metadata) -> None:
        """A record's acknowledgement (topic, partition, offset): only -w json shows it."""

    def send_failed(self, topic: str, key, value, error) -> None:
        """Kafka's ErrorLoggingCallback line for a record that could not be sent."""
        err(f"Error when sending message to topic {topic} with key: {_size(key)}, value: {_size(value)} "
            f"with error: {error}\n")

    # ---- kafka-console-consumer ----

    def records(self, records, formatter: MessageFormatter) -> None:
        out("".join(formatter.format(r) for r in records))
        sys.stdout.flush()

    def consumer_timed_out(self) -> None:
        err("ERROR Error processing message, terminating consumer process: "
            "org.apache.kafka.common.errors.TimeoutException\n")

    def consumed(self, count: int) -> None:
        err(f"Processed a total of {count} messages\n")

    # ---- kafka-consumer-groups ----

    def groups(self, listed, with_state: bool) -> None:
        """`listed`: GroupListings (group_id, state, protocol_type)."""
        if not with_state:
            out("".join(g.group_id + "\n" for g in listed))
            return
        width = max([15] + [len(g.group_id) for g in listed]) + 10
        lines = [f"{'GROUP':<{width}}{'STATE':<20}"] + [f"{g.group_id:<{width}}{g.state:<20}" for g in listed]
        out("".join(line.rstrip() + "\n" for line in lines))

    def group_missing(self, group_id: str) -> None:
        out(f"\nError: Consumer group '{group_id}' does not exist.\n")

    def group_notice(self, d) -> None:
        """What kafka-consumer-groups says on stderr before an empty or rebalancing group."""
        if d.state == "Empty":
            err(f"\nConsumer group '{d.group_id}' has no active members.\n")
        elif d.state in ("PreparingRebalance", "CompletingRebalance"):
            err(f"\nWarning: Consumer group '{d.group_id}' is rebalancing.\n")

    def group_state(self, d, coordinator: str) -> None:
        """`--describe --state`: `coordinator` is `host:port  (id)`."""
        width = max(25, len(d.group_id))
        out(f"\n{'GROUP':<{width}} {'COORDINATOR (ID)':<25} {'ASSIGNMENT-STRATEGY':<20} {'STATE':<15} #MEMBERS\n"
            f"{d.group_id:<{width}} {coordinator:<25} {d.protocol:<20} {d.state:<15} {len(d.members)}\n\n")

    def group_members(self, d, owned, verbose: bool) -> None:
        """`--describe --members`: `owned` is [(member, [(topic, partition)])]."""
        c = max([15] + [len(m.member_id) for m in d.members])
        h = max([15] + [len(m.client_host) for m in d.members])
        cl = max([15] + [len(m.client_id) for m in d.members])
        g = max(15, len(d.group_id))
        text = f"\n{'GROUP':<{g}} {'CONSUMER-ID':<{c}} {'HOST':<{h}} {'CLIENT-ID':<{cl}} {'#PARTITIONS':<15} "
        text += ("ASSIGNMENT" if verbose else "") + "\n"
        for m, parts in owned:
            line = f"{d.group_id:<{g}} {m.member_id:<{c}} {m.client_host:<{h}} {m.client_id:<{cl}} {len(parts):<15} "
            if verbose:
                by_topic: dict[str, list[int]] = {}
                for t, p in parts:
                    by_topic.setdefault(t, []).append(p)
                line += ", ".join(f"{t}({','.join(map(str, ps))})" for t, ps in by_topic.items()) or "-"
            text += line + "\n"
        out(text + "\n")

    def group_offsets(self, d, rows, committed: dict, ends: dict) -> None:
        """`--describe` (offsets): `rows` is [((topic, partition), member or None)]."""
        gw = max(15, len(d.group_id))
        tw = max([15] + [len(tp[0]) for tp, _ in rows])
        cw = max([15] + [len(m.member_id) for _, m in rows if m])
        hw = max([15] + [len(m.client_host) for _, m in rows if m])
        widths = [gw, tw, 10, 15, 15, 15, cw, hw]
        lines = ["\n" + _cells(widths, ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                                        "CONSUMER-ID", "HOST", "CLIENT-ID"])]
        for tp, m in rows:
            cur, end = committed.get(tp), ends.get(tp)
            lag = str(end - cur) if cur is not None and end is not None else "-"
            lines.append("\n" + _cells(widths, [d.group_id, tp[0], str(tp[1]), "-" if cur is None else str(cur),
                                                "-" if end is None else str(end), lag,
                                                m.member_id if m else "-", m.client_host if m else "-",
                                                m.client_id if m else "-"]))
        out("".join(lines) + "\n\n")

    def groups_deleted(self, groups: list[str], failed) -> None:
        """`failed`: the deletion results with an error (group in `.topic`, error code, message)."""
        if not failed:
            names = ", ".join(f"'{g}'" for g in groups)
            out(f"Deletion of requested consumer groups ({names}) was successful.\n")
            return
        lines = ["", "Error: Deletion of some consumer groups failed:"]
        for r in failed:
            kind = GROUP_ERRORS.get(r.error_code, "KafkaException")
            lines.append(f"* Group '{r.topic}' could not be deleted due to: java.util.concurrent.ExecutionException: "
                         f"org.apache.kafka.common.errors.{kind}: {r.error_message}")
        out("\n".join(lines) + "\n")

    def reset_dry_run_warning(self) -> None:
        err(RESET_WARNING + "\n")

    def reset_refused(self, d) -> None:
        out(f"\nError: Assignments can only be reset if the group '{d.group_id}' is inactive, "
            f"but the current state is {d.state}.\n")

    def offsets_reset(self, group_id: str, new: dict) -> None:
        """The new offset of each (topic, partition), executed or not."""
        lines = ["\n" + f"{'GROUP':<30} {'TOPIC':<30} {'PARTITION':<10} {'NEW-OFFSET':<15}".rstrip()]
        lines += ["\n" + f"{group_id:<30} {t:<30} {p:<10} {o:<15}".rstrip() for (t, p), o in new.items()]
        out("".join(lines) + "\n\n")

    # ---- kafka-leader-election ----

    def elections(self, kind: str, done: list[str], noop: list[str], failed: dict) -> None:
        """Partition names (`topic-p`) elected, already led by a valid replica, or failed (-> error)."""
        if done:
            out(f"Successfully completed leader election ({kind}) for partitions {', '.join(done)}\n")
        if noop:
            out(f"Valid replica already elected for partitions {', '.join(noop)}\n")
        for name, e in failed.items():
            out(f"Error completing leader election ({kind}) for partition: {name}: {e}\n")
        if failed:
            err(f"Exception in thread \"main\" kafka.common.AdminCommandFailedException: "
                f"{len(failed)} replica(s) could not be elected\n")


class JsonPrinter(TextPrinter):
    """One JSON object per line for the results that are data: topics, records, acknowledgements,
    groups and their offsets."""

    @staticmethod
    def _emit(obj: dict) -> None:
        out(json.dumps(obj) + "\n")

    def topic_names(self, names: list[str]) -> None:
        for n in names:
            self._emit({"topic": n})

    def topics_described(self, topics, under_replicated: bool = False, unavailable: bool = False,
                         with_overrides: bool = False) -> None:
        for t in topics:
            self._emit({"topic": t.name, "topic_id": t.topic_id, "configs": dict(t.configs), "partitions": [
                {"partition": p.partition, "leader": p.leader, "leader_epoch": p.leader_epoch,
                 "replicas": list(p.replicas), "isr": list(p.isr)}
                for p in sorted(t.partitions, key=lambda p: p.partition)]})

    def acknowledged(self, metadata) -> None:
        self._emit({"topic": metadata.topic, "partition": metadata.partition, "offset": metadata.offset})

    def records(self, records, formatter: MessageFormatter) -> None:
        out("".join(record_json(r) + "\n" for r in records))
        sys.stdout.flush()

    def groups(self, listed, with_state: bool) -> None:
        for g in listed:
            self._emit({"group": g.group_id, "state": g.state, "protocol_type": g.protocol_type})

    def group_offsets(self, d, rows, committed: dict, ends: dict) -> None:
        for tp, m in rows:          # one object per partition row
            cur, end = committed.get(tp), ends.get(tp)
            self._emit({"group": d.group_id, "state": d.state, "topic": tp[0], "partition": tp[1],
                        "current_offset": cur, "log_end_offset": end,
                        "lag": end - cur if cur is not None and end is not None else None,
                        "consumer_id": m.member_id if m else None, "host": m.client_host if m else None,
                        "client_id": m.client_id if m else None})


PRINTERS = {"simple": TextPrinter, "json": JsonPrinter, "table": TextPrinter}


def printer_for(name: str) -> TextPrinter:
    return PRINTERS[name]()
