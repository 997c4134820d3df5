"""The `dcli` entry point: the root app, which joins the command groups (each loaded when used).

Command lines run through dcli.cli.runner (one error line, DESIGN.md's exit codes); the shell and
the completion scripts reach this tree through dcli.cli.table.
"""
from __future__ import annotations

import importlib
import os
from typing import Optional

import click
import typer
from typer.core import TyperGroup

from dcli.cli.common import (CacertOption, CertOption, DialTimeoutOption, KeyOption, PasswordOption, ServerOption,
                             UserOption, WriteOutOption, apply_auth, apply_options, apply_tls)
from dcli.cli.runner import complete_if_asked, exit_now, fail, run

__all__ = ["app", "main", "run", "fail", "exit_now", "complete_if_asked", "GROUPS", "COMMANDS"]

# The command groups, imported only when used: `dcli zk get` loads neither the server nor the
# shell, and `dcli --help` loads none of them (click's "lazily loading subcommands" pattern).
# name -> (module whose `app` is the group, the one-line help `dcli --help` shows); a name in
# COMMANDS is one command (the module's app has exactly one), not a group.
GROUPS: dict[str, tuple[str, str]] = {
    "zk": ("dcli.cli.zk", "Coordination: the znode tree, as zkCli."),
    "kafka": ("dcli.cli.kafka", "The broker, as Kafka's command-line tools."),
    "kv": ("dcli.cli.kv", "Key-value store: quorum reads and writes on a consistent-hash ring."),
    "elect": ("dcli.cli.elect", "Campaign in a leader election (the seed's recipe), or observe one."),
    "lock": ("dcli.cli.lock", "Run a command while holding a distributed lock."),
    "registry": ("dcli.cli.registry", "Service registry: register instances, list and watch them."),
    "lb": ("dcli.cli.lb", "A load balancer whose backends follow the service registry."),
    "demo": ("dcli.cli.demo", "Live demos of the seed's pictures: election, registry."),
    "server": ("dcli.cli.server", "Run a dcli server (one node)."),
    "cluster": ("dcli.cli.cluster", "A local cluster: start, inspect, kill and restart node processes."),
    "user": ("dcli.cli.user", "Users who may log in: add, delete, change a password, list."),
    "auth": ("dcli.cli.auth", "Turn authentication on or off, or show whether it is on."),
    "shell": ("dcli.cli.shell_cmd", "An interactive zkCli-style shell (or a script of its commands)."),
}
COMMANDS = {"elect", "lock"}


class LazyGroup(TyperGroup):
    """The root group: lists GROUPS from the table and builds one only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in GROUPS if n not in self.commands)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in GROUPS:
            module = importlib.import_module(GROUPS[name][0])
            if name in COMMANDS:
                command = typer.main.get_command(module.app)
            else:
                holder = typer.Typer(rich_markup_mode=None)    # as a sub-app, a one-command app stays a group
                holder.add_typer(module.app, name=name)
                command = typer.main.get_command(holder).commands[name]
            self.add_command(command, name)
        return super().get_command(ctx, name)

    def load_all(self) -> dict[str, click.Command]:
        """Every group, built (the shell's completer and the completion scripts walk them all)."""
        for name in GROUPS:
            self.get_command(None, name)     # type: ignore[arg-type]  (click ignores ctx here)
        return self.commands

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, GROUPS[name][1] if name in GROUPS and name not in self.commands
                 else self.commands[name].get_short_help_str(formatter.width))
                for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(name="dcli", help="ZooKeeper-, Kafka- and Dynamo-style services on one gRPC server.",
                  cls=LazyGroup, no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


@app.callback()
def root(ctx: typer.Context, server_: Optional[str] = ServerOption,
         write_out: Optional[str] = WriteOutOption,
         dial_timeout: Optional[float] = DialTimeoutOption,
         cacert: Optional[str] = CacertOption, cert: Optional[str] = CertOption,
         key: Optional[str] = KeyOption, user: Optional[str] = UserOption,
         password: Optional[str] = PasswordOption) -> None:
    apply_options(ctx, server_, write_out, dial_timeout)
    apply_tls(cacert, cert, key)
    apply_auth(user, password)


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")    # gRPC's C core would print its own log lines
    complete_if_asked(app, "dcli")
    exit_now(run(app, argv, "dcli"))
