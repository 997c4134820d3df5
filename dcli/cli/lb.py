"""`dcli lb start|stats`: a load balancer whose backends are a service's instances in the
registry (dcli.lb), and its statistics per backend."""
from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from dcli.cli.common import settings
from dcli.cli.recipe_support import SessionTimeoutOption, new_client
from dcli.output.recipes import EventLines
from dcli.wire import errors

app = typer.Typer(name="lb", help="A load balancer whose backends follow the service registry.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})

# dcli.lb.strategies.STRATEGIES, repeated so that building the CLI does not import dcli.lb
STRATEGIES = ("round-robin", "weighted-round-robin", "ip-hash", "least-connections", "response-time", "agent")
START_HELP = """Balance connections (--mode tcp) or requests (--mode http) to the instances of
SERVICE in the registry, following it live; runs until Ctrl-C or SIGTERM.

\b
Strategies: round-robin, weighted-round-robin (meta weight=N), ip-hash (sticky by client
address), least-connections, response-time, agent (meta cpu, mem: see `registry register --agent`).

\b
Routes (http): --route MATCH[,MATCH...]:POOL sends matching requests to the instances with
meta pool=POOL; MATCH is method=POST (or POST|PUT), path=/prefix, header=NAME or header=NAME=VALUE.
Other requests go to the instances in no routed pool.

\b
Limits (nginx/HAProxy/Envoy names): a request head must arrive whole within
--client-header-timeout (408) with at most --max-headers fields and --max-header-size bytes
(431); a body over --client-max-body-size gets 413 and is streamed, never held whole; beyond
--max-connections clients a new connection is closed at once; a client that reads none of its
response for --send-timeout, and a tcp connection with no byte either way for --idle-timeout,
are closed. X-Forwarded-For/-Proto/-Host from a client are replaced
unless it is a --trusted-proxy.

\b
Example:
  dcli registry register orders 127.0.0.1:9001 --meta weight=2 &
  dcli registry register orders 127.0.0.1:9002 --meta pool=writers &
  dcli lb start --listen 127.0.0.1:8080 --service orders --mode http \\
      --strategy weighted-round-robin --route method=POST:writers
"""


def positive(value: float, flag: str) -> float:
    if value <= 0:
        raise errors.UsageError(f"{flag} must be positive")
    return value


@app.command("start", help=START_HELP)
def start(ctx: typer.Context,
          listen: str = typer.Option(..., "--listen", metavar="HOST:PORT",
                                     help="Where clients connect (port 0 picks a free one)."),
          service: str = typer.Option(..., "--service", metavar="NAME", help="The service whose instances are the backends."),
          strategy: str = typer.Option("round-robin", "--strategy", metavar="|".join(STRATEGIES)),
          mode: str = typer.Option("tcp", "--mode", metavar="tcp|http", help="Layer 4 (tcp) or layer 7 (http)."),
          route: Optional[list[str]] = typer.Option(None, "--route", metavar="MATCH[,MATCH...]:POOL",
                                                    help="http: send matching requests to a pool (repeat; first match wins)."),
          name: Optional[str] = typer.Option(None, "--name", metavar="NAME",
                                             help="This balancer's name for `lb stats` (default: the service)."),
          admin: str = typer.Option("127.0.0.1:0", "--admin", metavar="HOST:PORT",
                                    help="Where the JSON stats are served (GET /stats)."),
          root: str = typer.Option("/service_registry", "--root", metavar="PATH", help="The registry's znode."),
          health_interval: float = typer.Option(2.0, "--health-interval", metavar="SECONDS",
                                                help="How often backends are checked (0: never)."),
          health_path: Optional[str] = typer.Option(None, "--health-path", metavar="PATH",
                                                    help="Check with GET PATH (below 400 is healthy) instead of a TCP connect."),
          retry_after: float = typer.Option(2.0, "--retry-after", metavar="SECONDS",
                                            help="How long a failed backend is ejected (doubling while it keeps failing, up to 30 s)."),
          connect_timeout: float = typer.Option(2.0, "--connect-timeout", metavar="SECONDS",
                                                help="Give up connecting to a backend (and a health check) after this long."),
          timeout: float = typer.Option(30.0, "--timeout", metavar="SECONDS",
                                        help="http: give up waiting for a backend's response after this long."),
          pool_size: int = typer.Option(16, "--pool-size", metavar="N",
                                        help="http: idle keep-alive connections kept per backend."),
          client_header_timeout: float = typer.Option(60.0, "--client-header-timeout", metavar="SECONDS",
                                                      help="http: the whole request head must arrive within this (else 408)."),
          client_body_timeout: float = typer.Option(60.0, "--client-body-timeout", metavar="SECONDS",
                                                    help="http: the longest wait between two reads of a request body (else 408)."),
          keepalive_timeout: float = typer.Option(120.0, "--keepalive-timeout", metavar="SECONDS",
                                                  help="http: close a kept-alive client connection idle this long."),
          send_timeout: float = typer.Option(60.0, "--send-timeout", metavar="SECONDS",
                                             help="http: close a client that takes none of its response for this long."),
          max_headers: int = typer.Option(100, "--max-headers", metavar="N",
                                          help="http: header fields allowed in a request (else 431)."),
          max_header_size: str = typer.Option("64k", "--max-header-size", metavar="SIZE",
                                              help="http: request line and headers together, e.g. 64k (else 431)."),
          client_max_body_size: str = typer.Option("64m", "--client-max-body-size", metavar="SIZE",
                                                   help="http: the largest request body, e.g. 8m (else 413; 0: no limit)."),
          max_connections: int = typer.Option(1024, "--max-connections", metavar="N",
                                              help="Client connections at once; more are closed on accept."),
          idle_timeout: float = typer.Option(3600.0, "--idle-timeout", metavar="SECONDS",
                                             help="tcp: close both sides after no byte either way for this long (0: never)."),
          trusted_proxy: Optional[list[str]] = typer.Option(None, "--trusted-proxy", metavar="CIDR",
                                                            help="http: keep X-Forwarded-* from clients in CIDR (repeat)."),
          session_timeout: float = SessionTimeoutOption) -> None:
    if not service or "/" in service:
        raise errors.UsageError(f"invalid --service '{service}': a name without /")
    if strategy not in STRATEGIES:
        raise errors.UsageError(f"unknown strategy '{strategy}': choose {', '.join(STRATEGIES)}")
    if mode not in ("tcp", "http"):
        raise errors.UsageError(f"invalid --mode '{mode}': choose tcp or http")
    if route and mode != "http":
        raise errors.UsageError("--route needs --mode http (routes look at requests)")
    if health_path is not None and not health_path.startswith("/"):
        raise errors.UsageError(f"invalid --health-path '{health_path}': it starts with /")
    if health_interval < 0:
        raise errors.UsageError("--health-interval must not be negative")
    for value, flag in ((retry_after, "--retry-after"), (connect_timeout, "--connect-timeout"),
                        (timeout, "--timeout"), (pool_size, "--pool-size"),
                        (client_header_timeout, "--client-header-timeout"),
                        (client_body_timeout, "--client-body-timeout"), (keepalive_timeout, "--keepalive-timeout"),
                        (send_timeout, "--send-timeout"),
                        (max_headers, "--max-headers"), (max_connections, "--max-connections")):
        positive(value, flag)
    if idle_timeout < 0:
        raise errors.UsageError("--idle-timeout must not be negative")
    try:
        from dcli.lb.limits import Limits, parse_cidr, parse_size
        from dcli.lb.routes import parse_route
        from dcli.lb.service import Config, LoadBalancer
        from dcli.lb.upstream import split_address
    except ImportError as e:                   # h11, a declared dependency, missing from this install
        raise errors.DcliError(message=f"dcli lb cannot run: {e} (pip install h11)") from None
    import asyncio

    split_address(listen)
    split_address(admin)
    limits = Limits(client_header_timeout=client_header_timeout, client_body_timeout=client_body_timeout,
                    keepalive_timeout=keepalive_timeout, send_timeout=send_timeout, max_headers=max_headers,
                    max_header_size=positive(parse_size(max_header_size, "--max-header-size"), "--max-header-size"),
                    client_max_body_size=parse_size(client_max_body_size, "--client-max-body-size"),
                    max_connections=max_connections, idle_timeout=idle_timeout,
                    trusted_proxies=tuple(parse_cidr(c) for c in trusted_proxy or []))
    config = Config(listen=listen, service=service, strategy=strategy, mode=mode,
                    routes=[parse_route(r) for r in route or []], name=name or "", admin=admin, root=root,
                    health_interval=health_interval, health_path=health_path, retry_after=retry_after,
                    connect_timeout=connect_timeout, timeout=timeout, pool_size=pool_size, limits=limits)
    out = EventLines(settings(ctx).resolved_write_out())

    def ready(line: str) -> None:
        out("listening", line, listen=balancer.listen_address, admin=balancer.admin_address,
            mode=mode, strategy=strategy, service=service)

    balancer = LoadBalancer(config, lambda: new_client(ctx, session_timeout), out)
    asyncio.run(balancer.run(ready))


@app.command("stats")
def stats(ctx: typer.Context,
          name: Optional[str] = typer.Argument(None, metavar="[NAME]", help="A balancer's name (default: all)."),
          timeout: float = typer.Option(5.0, "--timeout", metavar="SECONDS", help="Wait this long for each balancer.")) -> None:
    """Connections, requests, errors and latency per backend of each running balancer (found
    through its entry under /dcli/lb)."""
    from dcli.cli.zk import session
    from dcli.lb import admin

    write_out = settings(ctx).resolved_write_out()
    positive(timeout, "--timeout")
    with session(ctx) as client:
        found = admin.find(client, name)
    failed = 0
    reports = []
    for instance in found:
        try:
            reports.append(admin.fetch(instance.address, timeout))
        except (OSError, ValueError) as e:
            failed += 1
            sys.stdout.flush()
            sys.stderr.write(f"lb {instance.service} at {instance.address}: no stats ({e})\n")
    print_stats(write_out, reports)
    if failed:
        raise typer.Exit(errors.ExitCode.UNAVAILABLE)


COLUMNS = (("BACKEND", "address"), ("STATE", "state"), ("POOL", "pool"), ("ACTIVE", "active"),
           ("CONNS", "connections"), ("REQS", "requests"), ("ERRORS", "errors"),
           ("MEAN_MS", "mean_ms"), ("P50_MS", "p50_ms"), ("P99_MS", "p99_ms"))

TABLE_TITLES = {"ACTIVE": "ACT", "CONNS": "CONN", "REQS": "REQ", "ERRORS": "ERR", "MEAN_MS": "MEAN",
                "P50_MS": "P50", "P99_MS": "P99"}


def cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value) if value != "" else "-"


def heading(report: dict) -> str:
    return (f"{report['name']} {report['listen']} ({report['mode']}, {report['strategy']}, "
            f"service {report['service']}), admin {report['admin']}")


def print_stats(write_out: str, reports: list[dict]) -> None:
    if write_out == "json":
        for r in reports:
            for b in r["backends"]:
                sys.stdout.write(json.dumps({"balancer": r["name"], "listen": r["listen"], **b}) + "\n")
        return
    if write_out == "table":
        from rich import box
        from rich.console import Console
        from rich.table import Table

        console = Console()
        for r in reports:
            columns = [(t, k) for t, k in COLUMNS if k != "pool" or any(b["pool"] for b in r["backends"])]
            table = Table(title=heading(r) + "; latency in ms", box=box.SIMPLE_HEAD, pad_edge=False,
                          collapse_padding=True)
            for title, _ in columns:
                table.add_column(TABLE_TITLES.get(title, title), no_wrap=True,
                                 justify="left" if title in ("BACKEND", "STATE", "POOL") else "right")
            for b in r["backends"]:
                table.add_row(*(cell(b.get(key)) for _, key in columns))
            console.print(table)
        return
    for r in reports:
        rows = [[title for title, _ in COLUMNS]] + [[cell(b.get(key)) for _, key in COLUMNS]
                                                    for b in r["backends"]]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        sys.stdout.write(heading(r) + "\n")
        for row in rows:
            sys.stdout.write("  ".join(v.ljust(w) if i < 3 else v.rjust(w)
                                       for i, (v, w) in enumerate(zip(row, widths))).rstrip() + "\n")
