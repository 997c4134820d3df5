"""zkCli's ACL commands for `dcli zk` and the shell: getAcl, setAcl, addauth, whoami.

An ACL is written as zkCli writes it, `scheme:id:perms[,...]` with perms from `cdrwa`
(`world:anyone:cdrwa`, `digest:bob:<base64 sha1 of bob:pw>:r`, `ip:10.0.0.0/8:rw`, `auth::cdrwa`),
and printed as zkCli prints it: `'world,'anyone` then `: cdrwa`. `addauth` holds for the rest
of the session: in the shell until it ends; a one-shot command ends with it.
"""
from __future__ import annotations

from typing import Optional

import typer

from dcli.cli.zk_session import PathArg, parse_version, printer, session
from dcli.wire import errors
from dcli.wire.paths import validate_path

USAGE = {
    "addauth": "addauth scheme auth",
    "getAcl": "getAcl [-s] path",
    "setAcl": "setAcl [-s] [-v version] [-R] path acl",
}


def parse_acl(text: str):
    from dcli.client.types import ACL

    return ACL.parse(text)


def get_acl(ctx: typer.Context, path: str = PathArg,
            stat: bool = typer.Option(False, "-s", help="Print the stat too.")) -> None:
    """Print a znode's ACL: getAcl [-s] path"""
    validate_path(path)
    with session(ctx) as zk:
        acl, st = zk.get_acls(path)
    printer(ctx).acl(path, acl, st if stat else None)


def set_acl(ctx: typer.Context, path: str = PathArg, acl: Optional[str] = typer.Argument(None),
            stat: bool = typer.Option(False, "-s", help="Print the new stat."),
            version: Optional[str] = typer.Option(None, "-v", metavar="VERSION",
                                                  help="Only if the ACL version (aversion) is this."),
            recursive: bool = typer.Option(False, "-R", help="The znode and everything below it.")) -> None:
    """Set a znode's ACL: setAcl [-s] [-v version] [-R] path acl"""
    validate_path(path)
    if acl is None:
        raise errors.UsageError(USAGE["setAcl"])
    entries = parse_acl(acl)
    v = parse_version(version)
    with session(ctx) as zk:
        st = zk.set_acls(path, entries, v)
        if recursive:
            pending = [path]
            while pending:          # every znode below it, as zkCli's -R
                below = pending.pop()
                for child in zk.get_children(below):
                    full = f"{below.rstrip('/')}/{child}"
                    zk.set_acls(full, entries)
                    pending.append(full)
    if stat:
        printer(ctx).stat(path, st)


def add_auth(ctx: typer.Context, scheme: Optional[str] = typer.Argument(None),
             auth: Optional[str] = typer.Argument(None)) -> None:
    """Add an id to the session: addauth scheme auth (digest user:password, or ip)"""
    if scheme is None:
        raise errors.UsageError(USAGE["addauth"])
    with session(ctx) as zk:
        zk.add_auth(scheme, auth or "")


def who_am_i(ctx: typer.Context) -> None:
    """The ids the server holds for this session: whoami"""
    with session(ctx) as zk:
        ids = zk.whoami()
    printer(ctx).whoami(ids)


def register_acl_commands(app: typer.Typer) -> None:
    app.command("getAcl")(get_acl)
    app.command("setAcl")(set_acl)
    app.command("addauth")(add_auth)
    app.command("whoami")(who_am_i)
