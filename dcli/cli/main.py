"""The `dcli` entry point: joins the command groups and turns every failure into one line.

Errors go to stderr as one line in the reference tool's words, with DESIGN.md's exit codes;
no traceback reaches the user.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

import importlib

import click
import typer
from click import exceptions as click_exc
from typer.core import TyperGroup

from dcli.cli.common import DialTimeoutOption, ServerOption, WriteOutOption, apply_options
from dcli.wire.errors import DcliError, ExitCode

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
         dial_timeout: Optional[float] = DialTimeoutOption) -> None:
    apply_options(ctx, server_, write_out, dial_timeout)


def run(typer_app: typer.Typer, argv: list[str] | None, prog: str, obj=None) -> int:
    """Run one command line; returns its exit code, having printed any error as one line.

    `obj` is the Settings to run with (the shell passes its own, holding its session)."""
    command = typer.main.get_command(typer_app)
    args = sys.argv[1:] if argv is None else argv
    try:
        # typer turns Ctrl-C into exit code 130 and, outside standalone mode, returns it
        rc = command.main(args, prog_name=prog, standalone_mode=False, obj=obj)
        return rc if isinstance(rc, int) else 0
    except DcliError as e:
        return fail(str(e), e.exit_code)
    except click_exc.NoSuchOption as e:
        return fail(f"Unrecognized option: {e.option_name}", ExitCode.USAGE)
    except click_exc.MissingParameter as e:
        name = e.ctx.command.name if e.ctx else ""
        from dcli.cli.zk import USAGE
        return fail(USAGE.get(name) or e.format_message(), ExitCode.USAGE)
    except click_exc.UsageError as e:
        msg = e.format_message()
        if msg.startswith("No such command"):
            cmd = msg.split("'")[1] if "'" in msg else msg
            msg = f"Command not found: {cmd}"
        return fail(msg, ExitCode.USAGE)
    except click_exc.NoArgsIsHelpError as e:
        sys.stdout.write(e.ctx.get_help() + "\n")
        return ExitCode.USAGE
    except click_exc.ClickException as e:
        return fail(e.format_message(), ExitCode.USAGE)
    except (typer.Abort, KeyboardInterrupt):
        return fail("Interrupted", ExitCode.INTERRUPTED)
    except typer.Exit as e:
        return e.exit_code
    except BrokenPipeError:
        return ExitCode.ERROR
    except Exception as e:      # a bug: still one line for the user; DCLI_DEBUG=1 shows where
        if os.environ.get("DCLI_DEBUG"):
            raise
        return fail(f"dcli: internal error: {type(e).__name__}: {e} (set DCLI_DEBUG=1 for details)",
                    ExitCode.ERROR)


def fail(message: str, code: int) -> int:
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    return int(code)


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")    # gRPC's C core would print its own log lines
    complete_if_asked(app, "dcli")
    exit_now(run(app, argv, "dcli"))


def complete_if_asked(typer_app: typer.Typer, prog: str) -> None:
    """Answer the shell's completion request (`_DCLI_COMPLETE=bash_complete` and the like, set by
    the scripts in completions/) with click's own completion engine."""
    var = f"_{prog.upper()}_COMPLETE"
    instruction = os.environ.get(var)
    if not instruction:
        return
    from click.shell_completion import shell_complete

    exit_now(shell_complete(typer.main.get_command(typer_app), {}, prog, var, instruction))


def exit_now(code: int) -> None:
    """Exit without the interpreter's teardown: the session is closed by now, and gRPC's objects
    finalized at shutdown can deadlock against its own threads (and cost time)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or ExitCode.ERROR
    os._exit(code)
