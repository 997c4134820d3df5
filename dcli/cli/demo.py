"""`dcli demo election|registry --nodes N [--script]`: the seed's pictures, live."""
from __future__ import annotations

import sys

import typer

from dcli.cli.common import settings
from dcli.wire import errors

app = typer.Typer(name="demo", help="Live demos of the seed's pictures: election, registry.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})

NodesOption = typer.Option(4, "--nodes", min=2, max=9, help="How many worker processes (2-9).")
ScriptOption = typer.Option(False, "--script", help="Run the seed's sequence and print each state as text.")
EmbeddedOption = typer.Option(False, "--embedded", help="Start an in-process server if none answers.")
KEYS = "k: kill the leader   1-9: kill or restart node N   q: quit"


@app.command("election")
def election(ctx: typer.Context, nodes: int = NodesOption, script: bool = ScriptOption,
             embedded: bool = EmbeddedOption) -> None:
    """Leader election without herd effect: N processes campaign; kill and restart them."""
    from dcli.demo.scenes import election_steps
    run_demo(ctx, nodes, script, embedded, registry=False, steps=election_steps)


@app.command("registry")
def registry(ctx: typer.Context, nodes: int = NodesOption, script: bool = ScriptOption,
             embedded: bool = EmbeddedOption) -> None:
    """Service registry in the leader-worker design: workers register, the leader deregisters."""
    from dcli.demo.scenes import registry_steps
    run_demo(ctx, nodes, script, embedded, registry=True, steps=registry_steps)


def run_demo(ctx, nodes: int, script: bool, embedded: bool, registry: bool, steps) -> None:
    from dcli.cli.recipe_support import sigterm_as_interrupt
    from dcli.demo.driver import Demo

    server = settings(ctx).resolved_server()
    embedded_server = None
    if embedded:
        from dcli.shell import EmbeddedServer, reachable
        if not reachable(server):
            embedded_server = EmbeddedServer(server).start()
            server = embedded_server.address
    sigterm_as_interrupt()
    demo = Demo(server, nodes, registry)
    try:
        demo.start()
        if script or not sys.stdin.isatty():
            run_script(demo, steps)
        else:
            run_live(demo, "service registry" if registry else "leader election")
    except TimeoutError as e:
        raise errors.OperationTimeoutError("", str(e)) from None
    finally:
        demo.stop()
        if embedded_server is not None:
            embedded_server.stop()


def run_script(demo, steps) -> None:
    from dcli.demo.scenes import text

    for i, (caption, action) in enumerate(steps(demo), 1):
        action()
        demo.wait_for(demo.settled)
        sys.stdout.write(f"== {i}. {caption}\n{text(demo)}\n\n")
        sys.stdout.flush()


def run_live(demo, title: str) -> None:
    import os
    import select
    import termios
    import tty

    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    from dcli.demo.scenes import table

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        with Live(auto_refresh=False) as live:
            while True:
                live.update(Group(table(demo, f"dcli demo: {title} ({demo.election_path})"), Text(KEYS)),
                            refresh=True)
                ready, _, _ = select.select([fd], [], [], 0.2)   # redraw as workers report
                if not ready:
                    continue
                key = os.read(fd, 1).decode(errors="ignore")
                if key == "q":
                    return
                if key == "k" and demo.leader():
                    demo.kill(demo.leader())
                elif key.isdigit() and 1 <= int(key) <= len(demo.nodes):
                    node = demo.nodes[int(key) - 1]
                    demo.kill(node) if node.alive else demo.launch(node)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
