"""The shell's session and dispatcher, and its scripted loop.

    from dcli.cli.table import CommandTable, Settings
    shell = Shell(Settings(server="127.0.0.1:7181"), CommandTable())
    shell.connect()
    rc = shell.execute('create /a "x"')     # prints `Created /a`; returns the exit code
    shell.quit()

One CoordClient lives as long as the shell (so its ephemerals do too); every command runs through
the CLI's command table (`table.run`) with `settings.client` set, the same code as the one-shot
CLI. The shell imports nothing of dcli.cli: `dcli shell` hands it the table and the Settings. A zk
command runs bare (`get /a`); any other group of the root app by its name (`zk get /a`,
`server ...`), so a group added later works here with no change. The shell-level commands are
zkCli's: help, history, redo, printwatches, connect, close, quit (and exit).
"""
from __future__ import annotations

import sys
import threading
from dataclasses import replace
from typing import Callable, Iterable

from dcli.shell.parse import is_skipped, split_commands, split_words
from dcli.wire.errors import ExitCode

SHELL_USAGE = {
    "close": "close ",
    "connect": "connect host:port",
    "history": "history ",
    "printwatches": "printwatches on|off",
    "quit": "quit ",
    "redo": "redo cmdno",
}
SHELL_COMMANDS = ("help", "history", "redo", "printwatches", "connect", "close", "quit", "exit")
HISTORY_SHOWN = 11
EVENT_WAIT_S = 2.0


class Shell:
    """`settings`: the CLI's Settings (server, write_out, dial_timeout, client); `table`: the CLI's
    CommandTable (dcli.cli.table), the only way the shell reaches a command."""

    def __init__(self, settings, table, interactive: bool = False):
        self.settings = settings
        self.table = table
        self.interactive = interactive
        # `help` is the shell's own; `shell` inside the shell would nest a second session
        self.zk_names = [n for n in table.zk_names if n != "help"]
        self.group_names = [n for n in table.group_names if n != "shell"]
        self.history: list[str] = []          # every command of the session, numbered from 0
        self.printwatches = True
        self.finished = False
        self.client = None
        self.state_listeners: list[Callable[[], None]] = []    # the REPL redraws its prompt
        self._print_lock = threading.Lock()
        self._seen = {}                       # KeeperState value -> threading.Event, per client
        self._quiet: set[str] = set()         # connection events not to print, once each

    # ---- the session ----

    @property
    def server(self) -> str:
        return self.settings.resolved_server()

    def connect(self, server: str | None = None, quiet: bool = False) -> int:
        """Close the current session (if any) and open a new one; returns an exit code.

        `quiet`: do not print this connect's SyncConnected event (a script's own start)."""
        from dcli.client import CoordClient
        from dcli.wire.errors import DcliError

        self.close()
        if server:
            self.settings.server = server
        self._seen = {"SyncConnected": threading.Event(), "Closed": threading.Event()}
        self._quiet = {"SyncConnected"} if quiet else set()
        client = CoordClient(self.server, dial_timeout=self.settings.dial_timeout,
                             default_watcher=self._on_event)
        client.add_listener(lambda _state: self._state_changed())
        self.client = client
        self.settings.client = client        # a failed one too: commands then say `Not connected`
        try:
            client.start()
        except DcliError as e:
            self._state_changed()
            return self.fail(str(e), e.exit_code)
        # print the connect event before anything a command prints after it
        self._seen["SyncConnected"].wait(EVENT_WAIT_S)
        self._state_changed()
        return 0

    def close(self, quiet: bool = False) -> None:
        client = self.client
        if client is None:
            return
        if quiet:
            self._quiet.add("Closed")
        seen = self._seen.get("Closed")
        was_open = client.state is not None
        client.close()
        if was_open and seen is not None:
            seen.wait(EVENT_WAIT_S)
        self._state_changed()

    def quit(self, quiet: bool = False) -> None:
        self.close(quiet)
        self.finished = True

    def state_text(self) -> str:
        """zkCli's state word for the prompt: CONNECTED, CONNECTING, CLOSED, NOT_CONNECTED."""
        client = self.client
        state = None if client is None else client.state
        if state is None:
            return "NOT_CONNECTED"
        return {"CONNECTED": "CONNECTED", "SUSPENDED": "CONNECTING", "LOST": "CLOSED"}[state.value]

    def _state_changed(self) -> None:
        for fn in list(self.state_listeners):
            fn()

    def _on_event(self, event) -> None:
        """The shell's default watcher: node events of -w watches and connection events."""
        quiet = event.path is None and event.state.value in self._quiet
        if quiet:
            self._quiet.discard(event.state.value)
        try:
            if self.printwatches and not quiet:
                from dcli.output.zk import printer_for

                try:
                    p = printer_for(self.settings.resolved_write_out())
                except Exception:
                    p = printer_for("simple")
                with self._print_lock:
                    p.event(event)
                    sys.stdout.flush()
        finally:
            if event.path is None:
                seen = self._seen.get(event.state.value)
                if seen is not None:
                    seen.set()

    # ---- commands ----

    def execute(self, line: str) -> int:
        """Run one line; returns its exit code (0 for a blank line)."""
        words = split_words(line)
        if not words:
            return 0
        self.history.append(line.strip())
        if words[0] == "redo":
            return self._redo(words)
        return self.dispatch(words)

    def dispatch(self, words: list[str]) -> int:
        name = words[0]
        if name in SHELL_COMMANDS:
            return getattr(self, f"cmd_{name}")(words[1:])
        if name in self.zk_names or name in self.group_names:
            return self.table.run(words, self.settings)
        sys.stdout.flush()
        sys.stderr.write(self.usage() + f"Command not found: Command not found {name}\n")
        return int(ExitCode.USAGE)

    def usage(self) -> str:
        lines = dict(self.table.usage, **SHELL_USAGE)
        lines["version"] = "version "
        text = "ZooKeeper -server host:port cmd args\n"
        text += "".join(f"\t{lines[k]}\n" for k in sorted(lines, key=str.lower))
        groups = [g for g in self.group_names if g not in lines]
        if groups:
            text += "Command groups (`GROUP --help`): " + ", ".join(groups) + "\n"
        return text

    def cmd_help(self, args) -> int:
        sys.stdout.write(self.usage())
        return 0

    def cmd_history(self, args) -> int:
        last = len(self.history) - 1
        for i in range(max(0, last - HISTORY_SHOWN + 1), last + 1):
            sys.stdout.write(f"{i} - {self.history[i]}\n")
        return 0

    def _redo(self, words) -> int:
        this = len(self.history) - 1
        try:
            i = int(words[1], 0)
        except (IndexError, ValueError):
            return self.fail(SHELL_USAGE["redo"], ExitCode.USAGE)
        if not 0 <= i < this:
            return self.fail("Command index out of range", ExitCode.USAGE)
        again = split_words(self.history[i])
        if again[0] == "redo":
            return self.fail("No redoing redos", ExitCode.USAGE)
        self.history[this] = self.history[i]
        return self.dispatch(again)

    def cmd_printwatches(self, args) -> int:
        if not args:
            sys.stdout.write(f"printwatches is {'on' if self.printwatches else 'off'}\n")
            return 0
        if args[0] not in ("on", "off"):
            return self.fail(SHELL_USAGE["printwatches"], ExitCode.USAGE)
        self.printwatches = args[0] == "on"
        return 0

    def cmd_connect(self, args) -> int:
        return self.connect(args[0] if args else None)

    def cmd_close(self, args) -> int:
        self.close()
        return 0

    def cmd_quit(self, args) -> int:
        self.quit()
        return 0

    cmd_exit = cmd_quit

    @staticmethod
    def fail(message: str, code) -> int:
        """Print `message` as the shell's one error line; returns `code`."""
        sys.stdout.flush()
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        return int(code)


def run_script(shell: Shell, lines: Iterable[str], stop_on_error: bool) -> int:
    """Scripted mode: one command per line, `#` comments; the exit code of the last failure."""
    rc = 0
    for line in lines:
        if is_skipped(line):
            continue
        try:
            code = shell.execute(line)
        except KeyboardInterrupt:
            code = Shell.fail("Interrupted", ExitCode.INTERRUPTED)
        sys.stdout.flush()
        if code:
            rc = code
            if stop_on_error:
                break
        if shell.finished:
            break
    return rc


def main(settings, table, command: str | None = None, stop_on_error: bool = False,
         embedded: bool = False) -> int:
    """`dcli shell`: the REPL at a terminal, else a script from -c or stdin. `settings` and
    `table` are the CLI's (see Shell)."""
    interactive = command is None and sys.stdin.isatty() and sys.stdout.isatty()
    shell = Shell(replace(settings, client=None), table, interactive=interactive)
    server = None
    if embedded:
        from dcli.shell.embedded import ensure_server

        server = ensure_server(shell.server)
    try:
        if interactive:
            from dcli.shell.repl import run_repl

            return run_repl(shell)
        shell.connect(quiet=True)       # a script's output is its commands' output
        lines = split_commands(command) if command is not None else sys.stdin
        return run_script(shell, lines, stop_on_error)
    finally:
        shell.quit(quiet=not interactive)
        if server is not None:
            server.stop()
