"""`python -m dcli_server` = `dcli server start` (handy for tests and process managers)."""
from dcli.cli.main import main

if __name__ == "__main__":
    main(["server", "start", *__import__("sys").argv[1:]])
