"""Printers for the recipe commands (elect, lock, registry): one line per happening, or one
JSON object per line with `-w json`, flushed at once so that a pipe sees each as it happens."""
from __future__ import annotations

import json
import sys


class EventLines:
    def __init__(self, write_out: str):
        self.json = write_out == "json"

    def __call__(self, event: str, text: str, **fields) -> None:
        line = json.dumps({"event": event, **fields}, ensure_ascii=False) if self.json else text
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def instances(write_out: str, rows) -> None:
    """`registry list`: SERVICE, ZNODE, ADDRESS, META per instance."""
    if write_out == "json":
        for i in rows:
            sys.stdout.write(json.dumps({"service": i.service, "znode": i.name, "address": i.address,
                                         "meta": i.meta}, ensure_ascii=False) + "\n")
        return
    if write_out == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table("SERVICE", "ZNODE", "ADDRESS", "META")
        for i in rows:
            table.add_row(i.service, i.name, i.address, meta_text(i.meta))
        Console().print(table)
        return
    for i in rows:
        sys.stdout.write("\t".join((i.service, i.name, i.address, meta_text(i.meta))).rstrip("\t") + "\n")


def meta_text(meta: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(meta.items()))
