"""`dcli shell`: an interactive (prompt_toolkit) and scripted zkCli-style shell.

Modules: parse (zkCli's line splitting), app (the session, the dispatcher and the two loops),
completer (a pure function from text to suggestions), refresher (the background znode cache),
toolbar (prompt and bottom toolbar text), embedded (an in-process server for --embedded).
Nothing here is imported by `dcli --help`; prompt_toolkit is imported only by the REPL.

What the rest of dcli uses, loaded on first use:

    from dcli.shell import run_shell                 # run_shell(settings, CommandTable(), command="ls /")
    from dcli.shell import EmbeddedServer, reachable  # an in-process server, and whether one answers

The shell imports nothing of dcli.cli: it is handed the CLI's command table and Settings.
"""

__all__ = ["run_shell", "EmbeddedServer", "ensure_server", "reachable"]


def __getattr__(name: str):
    if name == "run_shell":
        from dcli.shell.app import main
        return main
    if name in ("EmbeddedServer", "ensure_server", "reachable"):
        from dcli.shell import embedded
        return getattr(embedded, name)
    raise AttributeError(f"module 'dcli.shell' has no attribute {name!r}")
