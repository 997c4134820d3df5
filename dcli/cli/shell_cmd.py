"""`dcli shell`: zkCli's interactive shell (a prompt_toolkit REPL), or a script from -c / stdin.

    dcli shell                                # the REPL, one session for its whole life
    dcli shell -c 'create /a x; get /a'       # scripted; exit code of the last failure
    dcli shell --stop-on-error < setup.zk     # stop at the first failure, with its exit code
    dcli shell --embedded                     # start an in-process server if none answers

The shell itself lives in dcli.shell, imported only when this command runs; it reaches the
commands through the table of dcli.cli.table handed to it here.
"""
from __future__ import annotations

from typing import Optional

import typer

from dcli.cli.common import DialTimeoutOption, ServerOption, WriteOutOption, apply_options, settings

app = typer.Typer(name="shell", help="An interactive zkCli-style shell (or a script of its commands).",
                  context_settings={"help_option_names": ["-h", "--help"]}, add_completion=False,
                  rich_markup_mode=None)


@app.callback(invoke_without_command=True)
def shell(ctx: typer.Context, server: Optional[str] = ServerOption,
          write_out: Optional[str] = WriteOutOption,
          dial_timeout: Optional[float] = DialTimeoutOption,
          command: Optional[str] = typer.Option(None, "-c", "--command", metavar="'CMD; CMD'",
                                                help="Run these commands (split on ';') and exit."),
          stop_on_error: bool = typer.Option(False, "--stop-on-error",
                                             help="Stop at the first failing command, with its exit code."),
          embedded: bool = typer.Option(False, "--embedded",
                                        help="Start an in-process server if none answers at the address.")) -> None:
    """Open one session and run zkCli's commands in it: `get /a`, `ls -R /`, `zk ...`, `help`."""
    apply_options(ctx, server, write_out, dial_timeout)
    from dcli.cli.table import CommandTable
    from dcli.shell import run_shell

    raise typer.Exit(run_shell(settings(ctx), CommandTable(), command=command, stop_on_error=stop_on_error,
                               embedded=embedded))
