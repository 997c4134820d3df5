"""`dcli elect NAME [--id ID] [-- CMD ...]` and `dcli elect --observe NAME` (etcdctl elect's
counterpart, on the seed's algorithm: dcli.recipes.election)."""
from __future__ import annotations

import os
import queue
import threading
from typing import Optional

import typer

from dcli.cli.common import settings
from dcli.cli.recipe_support import (SessionTimeoutOption, exit_status, new_client, recipe_path,
                                     sigterm_as_interrupt, start_child, stop_child)
from dcli.output.recipes import EventLines
from dcli.wire import errors

app = typer.Typer(add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})
BASE = "/election"


@app.command("elect")
def elect(ctx: typer.Context,
          name: str = typer.Argument(..., metavar="NAME", help=f"Election name (under {BASE}) or path."),
          command: Optional[list[str]] = typer.Argument(None, metavar="[-- CMD ...]"),
          ident: Optional[str] = typer.Option(None, "--id", metavar="ID",
                                              help="This candidate's identifier (default host:pid)."),
          observe: bool = typer.Option(False, "--observe", "-l",
                                       help="Take no part: print each new leader."),
          session_timeout: float = SessionTimeoutOption) -> None:
    """Campaign in the election NAME, printing each transition; with `-- CMD`, run CMD while
    leader (stopped when leadership is lost; when it exits, leave with its exit code)."""
    path = recipe_path(name, BASE)
    out = EventLines(settings(ctx).resolved_write_out())
    sigterm_as_interrupt()
    if observe:
        if command:
            raise errors.UsageError("--observe runs no command")
        return run_observer(ctx, path, out, session_timeout)
    ident = ident or f"{os.uname().nodename}:{os.getpid()}"
    raise typer.Exit(exit_status(Campaign(ctx, path, ident, command or [], out, session_timeout).run()))


def run_observer(ctx, path: str, out: EventLines, session_timeout: float) -> None:
    from dcli.recipes import LeaderObserver

    leaders: queue.SimpleQueue = queue.SimpleQueue()
    client = new_client(ctx, session_timeout)
    try:
        lost = object()
        LeaderObserver(client, path, leaders.put, on_lost=lambda: leaders.put(lost)).start()
        while True:
            leader = leaders.get()
            if leader is lost:
                raise errors.SessionExpiredError(path)
            if leader is None:
                out("no-leader", f"{path}: no leader", path=path)
            else:
                out("leader", f"{path}: leader {leader.identifier} ({leader.znode})", path=path,
                    id=leader.identifier, znode=leader.znode)
    finally:
        client.close()


class Campaign:
    """The candidate's life: join, print transitions, run CMD while leader; a lost session means
    a new one and joining again, at the end (the seed's rejoining node)."""

    def __init__(self, ctx, path: str, ident: str, command: list[str], out: EventLines,
                 session_timeout: float):
        self.ctx, self.path, self.ident, self.command = ctx, path, ident, command
        self.out, self.session_timeout = out, session_timeout
        self.happenings: queue.SimpleQueue = queue.SimpleQueue()
        self.child = None

    def run(self) -> int:
        client = election = None
        try:
            while True:
                client, election = self.join()
                code = self.follow_events(election)
                if code is not None:
                    return code
                client.close()       # the session was lost: a new one joins at the end
                client = None
        finally:
            if self.child is not None:
                stop_child(self.child)
            if election is not None and client is not None:
                election.leave()
            if client is not None:
                client.close()

    def join(self):
        from dcli.recipes import LeaderElection

        client = new_client(self.ctx, self.session_timeout)
        put = self.happenings.put
        election = LeaderElection(client, self.path, self.ident,
                                  on_elected=lambda: put(("elected", None)),
                                  on_revoked=lambda reason: put(("revoked", reason)),
                                  on_follow=lambda pred: put(("follow", pred)),
                                  on_notified=lambda event: put(("notified", event)),
                                  on_ended=lambda reason: put(("ended", reason)))
        try:
            znode = election.join()
        except BaseException:
            client.close()
            raise
        self.out("joined", f"joined {self.path} as {znode.rsplit('/', 1)[1]} (id {self.ident})",
                 path=self.path, znode=znode.rsplit("/", 1)[1], id=self.ident)
        return client, election

    def follow_events(self, election) -> int | None:
        """Handle transitions until the session is lost (None) or CMD exits (its code)."""
        while True:
            what, arg = self.happenings.get()
            if what == "elected":
                self.out("elected", f"elected: leader of {self.path} as {election.name}",
                         path=self.path, znode=election.name, id=self.ident)
                if self.command and self.child is None:
                    self.child = start_child(self.command, {"DCLI_ELECTION": self.path,
                                                            "DCLI_ELECTION_ZNODE": election.name or ""})
                    threading.Thread(target=self._wait_child, args=(self.child,), daemon=True).start()
            elif what == "follow":
                self.out("follow", f"following: watching {arg}", path=self.path, znode=election.name,
                         watching=arg)
            elif what == "notified":
                name = (arg.path or "").rsplit("/", 1)[-1]
                self.out("notified", f"notified: {name} {arg.type.value}", path=self.path,
                         znode=name, type=arg.type.value)
            elif what == "revoked":
                self.out("revoked", f"revoked: {arg}", path=self.path, reason=arg)
                if self.child is not None:
                    child, self.child = self.child, None
                    stop_child(child)
            elif what == "ended":
                self.out("ended", f"out of the election: {arg}; joining again", path=self.path, reason=arg)
                return None
            elif what == "child-exit":
                if arg[0] is self.child:       # not one stopped on revocation
                    self.child = None
                    self.out("exit", f"command exited with {arg[1]}: leaving {self.path}",
                             path=self.path, code=arg[1])
                    return arg[1]

    def _wait_child(self, child) -> None:
        self.happenings.put(("child-exit", (child, child.wait())))
