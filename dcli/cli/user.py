"""`dcli user add|delete|passwd|list`: etcdctl's user commands on the Auth service.

A password comes from `--new-user-password`, `DCLI_NEW_USER_PASSWORD` or a prompt (typed twice,
not echoed), as etcdctl asks it; it is turned into a salted SCRAM credential before it is sent
(dcli.client.users). While auth is on, these need root or a user with the `admin` role (a
user may change their own password); log in with the root options `--user` and `--password`.
"""
from __future__ import annotations

import getpass
import os
import sys
from typing import Optional

import typer

from dcli.cli.common import settings
from dcli.wire import errors

app = typer.Typer(name="user", help="Users who may log in: add, delete, change a password, list.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})

ENV_NEW_PASSWORD = "DCLI_NEW_USER_PASSWORD"
PasswordOption = typer.Option(None, "--new-user-password", metavar="PASSWORD",
                              help=f"The password, instead of a prompt; env {ENV_NEW_PASSWORD}.")


def _new_password(given: str | None, name: str) -> str:
    password = given or os.environ.get(ENV_NEW_PASSWORD)
    if password:
        return password
    if not sys.stdin.isatty():
        raise errors.UsageError(f"no password for {name}: give --new-user-password or {ENV_NEW_PASSWORD}")
    first = getpass.getpass(f"Password of {name}: ")
    if getpass.getpass("Type password of {0} again for confirmation: ".format(name)) != first:
        raise errors.UsageError("passwords do not match")
    if not first:
        raise errors.UsageError("a password must not be empty")
    return first


def _client(ctx: typer.Context):
    from dcli.client.users import AuthClient

    s = settings(ctx)
    return AuthClient(s.resolved_server(), timeout=max(s.dial_timeout, 10.0))


@app.command("add")
def user_add(ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME"),
             password: Optional[str] = PasswordOption,
             role: Optional[list[str]] = typer.Option(None, "--role", metavar="admin",
                                                      help="Grant a role (admin: membership, users, "
                                                           "deleting topics, keyspaces).")) -> None:
    """Add a user. Add `root` before `dcli auth enable`.

      $ dcli user add root --new-user-password secret
      User root created
      $ dcli user add alice --role admin
    """
    from dcli.output import auth as out

    if password is None and ":" in name:       # etcdctl's `user add NAME:PASSWORD`
        name, password = name.split(":", 1)
    secret = _new_password(password, name)
    with _client(ctx) as client:
        client.user_add(name, secret, roles=role or ())
    out.done(settings(ctx).resolved_write_out(), f"User {name} created", user=name, event="created",
             roles=list(role or ()))


@app.command("delete")
def user_delete(ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME")) -> None:
    """Delete a user; their tokens stop working at once. Root stays while auth is enabled."""
    from dcli.output import auth as out

    with _client(ctx) as client:
        client.user_delete(name)
    out.done(settings(ctx).resolved_write_out(), f"User {name} deleted", user=name, event="deleted")


@app.command("passwd")
def user_passwd(ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME"),
                password: Optional[str] = PasswordOption) -> None:
    """Change a user's password; tokens issued before stop working.

      $ dcli --user alice user passwd alice
    """
    from dcli.output import auth as out

    secret = _new_password(password, name)
    with _client(ctx) as client:
        client.change_password(name, secret)
    out.done(settings(ctx).resolved_write_out(), "Password updated", user=name, event="password-changed")


@app.command("list")
def user_list(ctx: typer.Context) -> None:
    """The users, one a line (`-w table`: with their roles)."""
    from dcli.output import auth as out

    with _client(ctx) as client:
        users = client.users()
    out.users(settings(ctx).resolved_write_out(), users)
