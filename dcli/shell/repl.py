"""The interactive loop: one PromptSession with file history, Ctrl-R search, suggestions from
history, threaded completion from the background cache, a live prompt and a bottom toolbar.

While the prompt is up, output from other threads (watch events) goes through patch_stdout, so
it appears above the prompt and the half-typed line is redrawn below it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import Completer, Completion, ThreadedCompleter
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

from dcli.shell.completer import complete, shell_spec
from dcli.shell.refresher import ChildrenCache
from dcli.shell.toolbar import prompt_text, toolbar_text
from dcli.wire.errors import ExitCode


def history_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or (Path.home() / ".local" / "state")
    return Path(base) / "dcli" / "shell_history"


class ShellCompleter(Completer):
    def __init__(self, spec, children_of):
        self.spec, self.children_of = spec, children_of

    def get_completions(self, document, complete_event):
        for s in complete(document.text_before_cursor, self.spec, self.children_of):
            yield Completion(s.text, start_position=s.start, display_meta=s.meta or None)


def _history():
    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileHistory(str(path))
    except OSError:
        return InMemoryHistory()


def run_repl(shell) -> int:
    cache = ChildrenCache(lambda: shell.client).start()
    spec = shell_spec(shell.table.zk, shell.table.root)
    session = PromptSession(
        history=_history(), auto_suggest=AutoSuggestFromHistory(), enable_history_search=False,
        completer=ThreadedCompleter(ShellCompleter(spec, cache.children_soon)), complete_while_typing=False,
        bottom_toolbar=lambda: toolbar_text(shell), refresh_interval=None)

    def redraw() -> None:
        app = session.app
        if app.is_running:
            app.invalidate()
    shell.state_listeners.append(redraw)
    shell.connect()
    while not shell.finished:
        try:
            # only while the prompt is up: other threads' output goes above it; a command's own
            # output is written directly, so it is all out before the next prompt is drawn
            with patch_stdout(raw=True):
                line = session.prompt(lambda: prompt_text(shell))
        except KeyboardInterrupt:        # Ctrl-C: drop the line, not the shell
            continue
        except EOFError:                 # Ctrl-D
            break
        try:
            shell.execute(line)
        except KeyboardInterrupt:
            shell.fail("Interrupted", ExitCode.INTERRUPTED)
        sys.stdout.flush()
        cache.invalidate()
    cache.stop()
    return 0
