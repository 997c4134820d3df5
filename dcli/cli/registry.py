"""`dcli registry register|list|watch`: the seed's service registry (dcli.recipes.registry)."""
from __future__ import annotations

import os
import queue
from typing import Optional

import typer

from dcli.cli.common import settings
from dcli.cli.recipe_support import SessionTimeoutOption, new_client, sigterm_as_interrupt
from dcli.output import recipes as printers
from dcli.output.recipes import EventLines
from dcli.wire import errors

app = typer.Typer(name="registry", help="Service registry: register instances, list and watch them.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})
RootOption = typer.Option("/service_registry", "--root", metavar="PATH", help="The registry's znode.")


def parse_meta(items: list[str]) -> dict:
    meta = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise errors.UsageError(f"--meta wants KEY=VALUE, not {item!r}")
        meta[key] = value
    return meta


def machine_load() -> dict:
    """What an agent publishes: CPU (1-minute load per core) and memory in use, as fractions."""
    cpu = os.getloadavg()[0] / (os.cpu_count() or 1)
    info = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0])
        mem = 1 - info["MemAvailable"] / info["MemTotal"]
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        mem = 0.0
    return {"cpu": f"{min(cpu, 1.0):.3f}", "mem": f"{mem:.3f}"}


@app.command("register")
def register(ctx: typer.Context, service: str = typer.Argument(..., metavar="SERVICE"),
             address: str = typer.Argument(..., metavar="ADDR"),
             meta: Optional[list[str]] = typer.Option(None, "--meta", metavar="KEY=VALUE",
                                                      help="Metadata (repeat): weight=2, zone=a, ..."),
             agent: bool = typer.Option(False, "--agent",
                                        help="Publish this machine's CPU and memory load (meta cpu, mem) as it changes."),
             agent_interval: float = typer.Option(2.0, "--agent-interval", metavar="SECONDS",
                                                  help="How often the agent measures."),
             root: str = RootOption, session_timeout: float = SessionTimeoutOption) -> None:
    """Register ADDR under SERVICE and stay registered while this runs (Ctrl-C deregisters)."""
    from dcli.recipes import ServiceRegistry

    fixed = parse_meta(meta or [])
    if agent_interval <= 0:
        raise errors.UsageError("--agent-interval must be positive")
    out = EventLines(settings(ctx).resolved_write_out())
    sigterm_as_interrupt()
    while True:
        lost: queue.SimpleQueue = queue.SimpleQueue()
        client = new_client(ctx, session_timeout)
        try:
            client.add_listener(lambda state: state.value == "LOST" and lost.put(True))
            registry = ServiceRegistry(client, root)
            entry = registry.register(service, address, {**fixed, **(machine_load() if agent else {})})
            out("registered", f"registered {address} as {entry.path}", service=service,
                address=address, znode=entry.path, meta=entry.meta)
            while True:
                try:
                    lost.get(timeout=agent_interval if agent else None)
                    break
                except queue.Empty:
                    try:
                        entry.update({**fixed, **machine_load()})
                    except (errors.ConnectionLossError, errors.NotConnectedError):
                        pass            # a brief disconnection: the next round tries again
                    except errors.NoNodeError:
                        break           # deleted by someone: register again
            out("lost", "registration lost: registering again", service=service, address=address)
        finally:
            client.close()


@app.command("list")
def list_(ctx: typer.Context, service: Optional[str] = typer.Argument(None, metavar="[SERVICE]"),
          root: str = RootOption) -> None:
    """The registered instances (of SERVICE, or of every service)."""
    from dcli.cli.zk import session
    from dcli.recipes import ServiceRegistry

    with session(ctx) as client:
        registry = ServiceRegistry(client, root)
        names = [service] if service else registry.services()
        rows = [i for name in names for i in registry.instances(name)]
    printers.instances(settings(ctx).resolved_write_out(), rows)


@app.command("watch")
def watch(ctx: typer.Context, service: str = typer.Argument(..., metavar="SERVICE"),
          root: str = RootOption,
          count: Optional[int] = typer.Option(None, "--count", help="Stop after this many changes.")) -> None:
    """Print SERVICE's instances now and after every change, as discovery sees them."""
    from dcli.cli.zk import session
    from dcli.recipes import ServiceRegistry

    out = EventLines(settings(ctx).resolved_write_out())
    changes: queue.SimpleQueue = queue.SimpleQueue()
    sigterm_as_interrupt()
    with session(ctx) as client:
        lost = object()
        discovery = ServiceRegistry(client, root).watch(service, changes.put, lambda: changes.put(lost))
        try:
            seen = 0
            while count is None or seen < count:
                instances = changes.get()
                if instances is lost:
                    raise errors.SessionExpiredError(service)
                seen += 1
                text = " ".join(i.address for i in instances) or "(none)"
                out("instances", f"{service}: {text}", service=service,
                    instances=[{"znode": i.name, "address": i.address, "meta": i.meta} for i in instances])
        finally:
            discovery.stop()
