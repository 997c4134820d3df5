"""What every command group shares: where the server is, how to print, how to connect."""
from __future__ import annotations

import os
from dataclasses import dataclass

import typer

from dcli.wire import errors

DEFAULT_SERVER = "127.0.0.1:7181"
WRITE_OUT_CHOICES = ("simple", "json", "table")


@dataclass
class Settings:
    server: str | None = None
    write_out: str | None = None
    dial_timeout: float = 5.0
    # a session that outlives one command (the shell's); None: each command opens its own
    client: object | None = None

    def resolved_server(self) -> str:
        return self.server or os.environ.get("DCLI_SERVER") or DEFAULT_SERVER

    def resolved_write_out(self) -> str:
        choice = self.write_out or os.environ.get("DCLI_WRITE_OUT") or "simple"
        if choice not in WRITE_OUT_CHOICES:
            raise errors.UsageError(f"invalid output format '{choice}': choose simple, json or table")
        return choice


def settings(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = Settings()
    return root.obj


def apply_options(ctx: typer.Context, server: str | None, write_out: str | None,
                  dial_timeout: float | None) -> None:
    s = settings(ctx)
    if server:
        s.server = server
    if write_out:
        s.write_out = write_out
    if dial_timeout is not None:
        if dial_timeout <= 0:
            raise errors.UsageError("--dial-timeout must be positive")
        s.dial_timeout = dial_timeout


ServerOption = typer.Option(None, "--server", "-server", metavar="HOST:PORT[,...]",
                            help="Server address(es); env DCLI_SERVER; default 127.0.0.1:7181.")
WriteOutOption = typer.Option(None, "--write-out", "-w", metavar="simple|json|table",
                              help="Output format; env DCLI_WRITE_OUT.")
CacertOption = typer.Option(None, "--cacert", metavar="FILE",
                            help="Connect with TLS, trusting servers signed by this CA; env DCLI_CACERT.")
CertOption = typer.Option(None, "--cert", metavar="FILE",
                          help="Client certificate for TLS (servers with --client-cert-auth); env DCLI_CERT.")
KeyOption = typer.Option(None, "--key", metavar="FILE", help="The key of --cert; env DCLI_KEY.")


def apply_tls(cacert: str | None, cert: str | None, key: str | None) -> None:
    """--cacert/--cert/--key over DCLI_CACERT/DCLI_CERT/DCLI_KEY, for every client the command opens."""
    from dcli.client.tls import ENV, TlsFiles

    for name, value in (("cacert", cacert), ("cert", cert), ("key", key)):
        if value:
            os.environ[ENV[name]] = value
    TlsFiles.from_env().check()


DialTimeoutOption = typer.Option(None, "--dial-timeout", metavar="SECONDS",
                                 help="Give up connecting after this long (default 5).")


UserOption = typer.Option(None, "--user", metavar="NAME[:PASSWORD]",
                          help="Log in as this user (servers with auth enabled); env DCLI_USER.")
PasswordOption = typer.Option(None, "--password", metavar="PASSWORD",
                              help="The password of --user; env DCLI_PASSWORD; asked for when not given.")


def apply_auth(user: str | None, password: str | None) -> None:
    """--user/--password over DCLI_USER/DCLI_PASSWORD, for every client the command opens; the
    password is asked for on a terminal when neither gives one."""
    import getpass
    import sys

    from dcli.client import auth

    user = user or os.environ.get(auth.ENV_USER) or None
    if not user:
        return
    user, password = auth.split_user(user, password or os.environ.get(auth.ENV_PASSWORD) or None)
    if not user:
        raise errors.UsageError("--user needs a name")
    if password is None:
        if not sys.stdin.isatty():
            raise errors.UsageError(f"no password for {user}: give --password or DCLI_PASSWORD")
        password = getpass.getpass("Password: ")
    auth.configure(user, password)
