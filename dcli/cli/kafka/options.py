"""What every Kafka tool shares: `--bootstrap-server` (defaulting to dcli's --server /
DCLI_SERVER) and the broker printer chosen by `-w`."""
from __future__ import annotations

from typing import Optional

import typer

from dcli.cli.common import settings

BootstrapOption = typer.Option(None, "--bootstrap-server", metavar="HOST:PORT",
                               help="The server to connect to (default: --server / DCLI_SERVER).")


def bootstrap(ctx: typer.Context, given: Optional[str]) -> str:
    return given or settings(ctx).resolved_server()


def printer(ctx: typer.Context):
    """The broker printer for this command line's -w (dcli.output.broker)."""
    from dcli.output.broker import printer_for

    return printer_for(settings(ctx).resolved_write_out())


def json_out(ctx: typer.Context) -> bool:
    return settings(ctx).resolved_write_out() == "json"
