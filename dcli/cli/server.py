"""`dcli server start`: run one node in the foreground.

The server parses its own settings (dcli_server.config: a TOML file, DCLI_* variables, flags);
this command hands its arguments over unchanged, so `dcli server start --help` is the server's.
"""
from __future__ import annotations

import os

import typer

app = typer.Typer(name="server", help="Run a dcli server (one node).", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]}, add_completion=False,
                  rich_markup_mode=None)


@app.command("start", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def start(ctx: typer.Context) -> None:
    """Serve the coordination service, the broker and the key-value store until SIGINT or SIGTERM
    (--help lists the settings; --config FILE reads them from a TOML file)."""
    from dcli_server.config import main

    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    code = main(list(ctx.args), prog="dcli server start")
    if code:
        raise typer.Exit(code)
