"""`zkCli`: the zk commands at the top level, so zkCli's command lines paste as they are:
`zkCli -server 127.0.0.1:7181 create /parent "parent znode"`."""
from __future__ import annotations

import os
import sys

from dcli.cli.main import exit_now, run
from dcli.cli.zk import app


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    exit_now(run(app, argv, "zkCli"))
