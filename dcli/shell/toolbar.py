"""The prompt and the bottom toolbar, as text computed afresh at every redraw."""
from __future__ import annotations


def prompt_text(shell) -> str:
    """zkCli's prompt with our name: `[dcli: 127.0.0.1:7181(CONNECTED) 3] `."""
    return f"[dcli: {shell.server}({shell.state_text()}) {len(shell.history)}] "


def toolbar_text(shell) -> str:
    client = shell.client
    sid = getattr(client, "session_id", 0) or 0
    server = getattr(client, "server", "") or shell.server
    session = f"0x{sid:x}" if sid else "-"
    watches = "on" if shell.printwatches else "off"
    return f" server {server} | session {session} | {shell.state_text()} | printwatches {watches} | Ctrl-D quits "
