"""The CLI's public command table: every command of the `dcli` tree, and one way to run a command
line of them with given Settings. The shell (dcli.shell, which imports nothing of dcli.cli: the
`shell` command hands it a table) and scripts/gen_completions.py use the CLI through this.

    table = CommandTable()
    table.zk_names          # zkCli's commands, which the shell runs bare: ['addWatch', 'create', ...]
    table.group_names       # the root app's groups: ['cluster', 'demo', 'elect', 'kafka', ...]
    rc = table.run(["get", "/a"], settings)          # prints as `dcli zk get /a` does
    rc = table.run(["kafka", "topics", "--list"], settings)

`zk` and `root` are the click commands themselves: the shell's completer reads their names,
options and help from them.
"""
from __future__ import annotations

import typer

from dcli.cli import main, zk
from dcli.cli.common import Settings
from dcli.cli.runner import run

__all__ = ["CommandTable", "Settings", "completion_roots"]


class CommandTable:
    """The command tree, built once (every lazily loaded group included)."""

    def __init__(self):
        self.zk = typer.main.get_command(zk.app)
        self.root = typer.main.get_command(main.app)
        self.root.load_all()
        self.zk_names = sorted(self.zk.commands)
        self.group_names = sorted(self.root.commands)
        self.usage: dict[str, str] = dict(zk.USAGE)       # zkCli's usage line of each zk command

    def run(self, argv: list[str], settings: Settings, prog: str = "dcli") -> int:
        """Run one command line: a zk command bare (`get /a`), anything else by its group's name
        (`zk get /a`, `kafka topics --list`). Returns its exit code, any error printed as one line."""
        typer_app = zk.app if argv and argv[0] in self.zk.commands else main.app
        return run(typer_app, argv, prog, obj=settings)


def completion_roots() -> dict[str, typer.Typer]:
    """The programs with shell completion scripts: program name -> its Typer app."""
    return {"dcli": main.app, "zkCli": zk.app}
