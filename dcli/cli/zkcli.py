"""`zkCli`: the zk commands at the top level, so zkCli's command lines paste as they are:
`zkCli -server 127.0.0.1:7181 create /parent "parent znode"`."""
from __future__ import annotations

import os

from dcli.cli.runner import complete_if_asked, exit_now, run
from dcli.cli.zk import app


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    complete_if_asked(app, "zkCli")
    exit_now(run(app, argv, "zkCli"))
