"""Write the bash, zsh and fish completion scripts of `dcli` and `zkCli` into completions/
(run by `make completions`). `--check` compares instead of writing and exits 1 when stale.

The scripts are click's: they call the command back with `_DCLI_COMPLETE=<shell>_complete`, so
commands, flags and znode paths (from a running server) complete without regenerating them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import typer
from click.shell_completion import get_completion_class

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "completions"
SUFFIX = {"bash": "bash", "zsh": "zsh", "fish": "fish"}


def scripts() -> dict[str, str]:
    from dcli.cli.table import completion_roots

    out = {}
    for prog, typer_app in completion_roots().items():
        command = typer.main.get_command(typer_app)
        for shell, suffix in SUFFIX.items():
            cls = get_completion_class(shell)
            out[f"{prog}.{suffix}"] = cls(command, {}, prog, f"_{prog.upper()}_COMPLETE").source() + "\n"
    return out


def main() -> int:
    fresh = scripts()
    if "--check" in sys.argv[1:]:
        stale = [name for name, text in fresh.items()
                 if not (OUT / name).is_file() or (OUT / name).read_text() != text]
        if stale:
            print(f"completions/ is stale ({', '.join(stale)}): run `make completions`", file=sys.stderr)
            return 1
        return 0
    OUT.mkdir(exist_ok=True)
    for name, text in fresh.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
