"""Printers for the zk commands: zkCli's exact text (simple), one JSON object per result (json),
or rich tables (table). One method per kind of result; commands never format text themselves.
"""
from __future__ import annotations

import sys
import time

STAT_FIELDS = ("cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion", "dataVersion",
               "aclVersion", "ephemeralOwner", "dataLength", "numChildren")


def java_date(ms: int) -> str:
    """Java's Date.toString(): `Wed Nov 25 00:30:12 UTC 2026`, in the local zone."""
    return time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(ms / 1000))


def stat_values(stat) -> list[tuple[str, str]]:
    return [
        ("cZxid", hex(stat.czxid)), ("ctime", java_date(stat.ctime)),
        ("mZxid", hex(stat.mzxid)), ("mtime", java_date(stat.mtime)),
        ("pZxid", hex(stat.pzxid)), ("cversion", str(stat.cversion)),
        ("dataVersion", str(stat.version)), ("aclVersion", str(stat.aversion)),
        ("ephemeralOwner", hex(stat.ephemeralOwner)), ("dataLength", str(stat.dataLength)),
        ("numChildren", str(stat.numChildren)),
    ]


def stat_dict(stat) -> dict:
    return {"cZxid": stat.czxid, "ctime": stat.ctime, "mZxid": stat.mzxid, "mtime": stat.mtime,
            "pZxid": stat.pzxid, "cversion": stat.cversion, "dataVersion": stat.version,
            "aclVersion": stat.aversion, "ephemeralOwner": stat.ephemeralOwner,
            "dataLength": stat.dataLength, "numChildren": stat.numChildren}


def data_text(data: bytes | None) -> str:
    """zkCli prints data as UTF-8 text and null as `null`; bytes that are not UTF-8 are escaped."""
    if data is None:
        return "null"
    return data.decode("utf-8", errors="backslashreplace")


def data_json(data: bytes | None) -> dict:
    import base64

    if data is None:
        return {"data": None}
    try:
        return {"data": data.decode("utf-8"), "encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"data": base64.b64encode(data).decode(), "encoding": "base64"}


def list_text(names) -> str:
    return "[" + ", ".join(names) + "]"


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


class SimplePrinter:
    """zkCli's text, line for line (results on stdout; `Created` too, unlike zkCli)."""

    def created(self, path: str, stat=None) -> None:
        out(f"Created {path}")

    def data(self, path, data, stat=None) -> None:
        out(data_text(data))
        if stat is not None:
            self.stat(path, stat)

    def stat(self, path, stat) -> None:
        sys.stdout.write("".join(f"{k} = {v}\n" for k, v in stat_values(stat)))

    def set(self, path, stat, show_stat: bool) -> None:
        if show_stat:
            self.stat(path, stat)

    def deleted(self, path) -> None:
        pass

    def children(self, path, names, stat=None) -> None:
        out(list_text(names))
        if stat is not None:
            self.stat(path, stat)

    def tree(self, path, paths) -> None:
        sys.stdout.write("".join(p + "\n" for p in paths))

    def synced(self, path) -> None:
        out("Sync is OK")

    def ephemerals(self, prefix, paths) -> None:
        out(list_text(paths))

    def count(self, path, n) -> None:
        out(str(n))

    def watches_removed(self, path, kinds) -> None:
        pass

    def acl(self, path, acl, stat=None) -> None:
        for entry in acl:
            out(f"'{entry.scheme},'{entry.id}")
            out(f": {entry.perm_letters}")
        if stat is not None:
            self.stat(path, stat)

    def whoami(self, ids) -> None:
        out("Auth scheme: User")
        for scheme, user in ids:
            out(f"{scheme}: {user}")

    def event(self, event) -> None:
        out()
        out("WATCHER::")
        out()
        out(str(event))
        sys.stdout.flush()

    def message(self, text: str) -> None:
        out(text)


class JsonPrinter:
    """One JSON object per result, one per line (streams too)."""

    @staticmethod
    def _emit(obj: dict) -> None:
        import json

        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def created(self, path, stat=None) -> None:
        obj = {"path": path}
        if stat is not None:
            obj["stat"] = stat_dict(stat)
        self._emit(obj)

    def data(self, path, data, stat=None) -> None:
        obj = {"path": path, **data_json(data)}
        if stat is not None:
            obj["stat"] = stat_dict(stat)
        self._emit(obj)

    def stat(self, path, stat) -> None:
        self._emit({"path": path, "stat": stat_dict(stat)})

    def set(self, path, stat, show_stat: bool) -> None:
        self._emit({"path": path, "stat": stat_dict(stat)})

    def deleted(self, path) -> None:
        self._emit({"path": path, "deleted": True})

    def children(self, path, names, stat=None) -> None:
        obj = {"path": path, "children": list(names)}
        if stat is not None:
            obj["stat"] = stat_dict(stat)
        self._emit(obj)

    def tree(self, path, paths) -> None:
        self._emit({"path": path, "paths": list(paths)})

    def synced(self, path) -> None:
        self._emit({"path": path, "synced": True})

    def ephemerals(self, prefix, paths) -> None:
        self._emit({"prefix": prefix, "ephemerals": list(paths)})

    def count(self, path, n) -> None:
        self._emit({"path": path, "count": n})

    def watches_removed(self, path, kinds) -> None:
        self._emit({"path": path, "removed": list(kinds)})

    def acl(self, path, acl, stat=None) -> None:
        obj = {"path": path, "acl": [{"scheme": a.scheme, "id": a.id, "perms": a.perm_letters} for a in acl]}
        if stat is not None:
            obj["stat"] = stat_dict(stat)
        self._emit(obj)

    def whoami(self, ids) -> None:
        self._emit({"ids": [{"scheme": scheme, "user": user} for scheme, user in ids]})

    def event(self, event) -> None:
        self._emit({"type": event.type.value, "state": event.state.value, "path": event.path,
                    "zxid": event.zxid})

    def message(self, text: str) -> None:
        self._emit({"message": text})


class TablePrinter(SimplePrinter):
    """rich tables for humans at a terminal; everything else as in simple."""

    def stat(self, path, stat) -> None:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=path, show_header=True)
        table.add_column("field")
        table.add_column("value")
        for k, v in stat_values(stat):
            table.add_row(k, v)
        Console().print(table)

    def children(self, path, names, stat=None) -> None:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=path)
        table.add_column("child")
        for n in names:
            table.add_row(n)
        Console().print(table)
        if stat is not None:
            self.stat(path, stat)


PRINTERS = {"simple": SimplePrinter, "json": JsonPrinter, "table": TablePrinter}


def printer_for(name: str):
    return PRINTERS[name]()
