"""`python -m dcli_server` = `dcli server start`: one node, configured by dcli_server.config."""
import os
import sys

from dcli_server.config import main

if __name__ == "__main__":
    code = main(prog="python -m dcli_server")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)      # without the interpreter's teardown: gRPC's finalizers can hang against its threads
