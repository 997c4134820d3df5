"""`dcli auth enable|disable|status`: etcdctl's auth switch.

Auth is off by default; `enable` is refused until a `root` user exists (`dcli user add root`).
Once on, every call needs a token (the root options `--user NAME` with `--password`,
`DCLI_USER`/`DCLI_PASSWORD`, or a prompt), and administrative calls need root or the `admin`
role. See docs/auth.md.
"""
from __future__ import annotations

import typer

from dcli.cli.common import settings

app = typer.Typer(name="auth", help="Turn authentication on or off, or show whether it is on.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})


def _client(ctx: typer.Context):
    from dcli.client.users import AuthClient

    s = settings(ctx)
    return AuthClient(s.resolved_server(), timeout=max(s.dial_timeout, 10.0))


@app.command("enable")
def auth_enable(ctx: typer.Context) -> None:
    """Turn authentication on (needs the root user).

      $ dcli user add root --new-user-password secret
      $ dcli auth enable
      Authentication Enabled
    """
    from dcli.output import auth as out

    with _client(ctx) as client:
        client.enable()
    out.done(settings(ctx).resolved_write_out(), "Authentication Enabled", enabled=True)


@app.command("disable")
def auth_disable(ctx: typer.Context) -> None:
    """Turn authentication off (as root or an admin).

      $ dcli --user root auth disable
      Authentication Disabled
    """
    from dcli.output import auth as out

    with _client(ctx) as client:
        client.disable()
    out.done(settings(ctx).resolved_write_out(), "Authentication Disabled", enabled=False)


@app.command("status")
def auth_status(ctx: typer.Context) -> None:
    """Whether authentication is on, and the auth revision (moves with every change)."""
    from dcli.output import auth as out

    with _client(ctx) as client:
        enabled, revision = client.status()
    out.status(settings(ctx).resolved_write_out(), enabled, revision)
