"""Running one command line: parse it with click, run it, and turn every failure into one line.

    code = run(app, ["get", "/a"], "zkCli")     # prints the result or one error line
    exit_now(code)

Errors go to stderr as one line in the reference tool's words, with DESIGN.md's exit codes;
no traceback reaches the user. Every entry point (dcli, zkCli, the kafka-* scripts, the shell)
runs its command lines through `run`.
"""
from __future__ import annotations

import os
import sys

import typer
from click import exceptions as click_exc

from dcli.wire.errors import DcliError, ExitCode


def run(typer_app: typer.Typer, argv: list[str] | None, prog: str, obj=None) -> int:
    """Run one command line; returns its exit code, having printed any error as one line.

    `obj` is the Settings to run with (the shell passes its own, holding its session)."""
    command = typer.main.get_command(typer_app)
    args = sys.argv[1:] if argv is None else argv
    try:
        # typer turns Ctrl-C into exit code 130 and, outside standalone mode, returns it
        rc = command.main(args, prog_name=prog, standalone_mode=False, obj=obj)
        return rc if isinstance(rc, int) else 0
    except DcliError as e:
        return fail(str(e), e.exit_code)
    except click_exc.NoSuchOption as e:
        return fail(f"Unrecognized option: {e.option_name}", ExitCode.USAGE)
    except click_exc.MissingParameter as e:
        name = e.ctx.command.name if e.ctx else ""
        from dcli.cli.zk import USAGE
        return fail(USAGE.get(name) or e.format_message(), ExitCode.USAGE)
    except click_exc.UsageError as e:
        msg = e.format_message()
        if msg.startswith("No such command"):
            cmd = msg.split("'")[1] if "'" in msg else msg
            msg = f"Command not found: {cmd}"
        return fail(msg, ExitCode.USAGE)
    except click_exc.NoArgsIsHelpError as e:
        sys.stdout.write(e.ctx.get_help() + "\n")
        return ExitCode.USAGE
    except click_exc.ClickException as e:
        return fail(e.format_message(), ExitCode.USAGE)
    except (typer.Abort, KeyboardInterrupt):
        return fail("Interrupted", ExitCode.INTERRUPTED)
    except typer.Exit as e:
        return e.exit_code
    except BrokenPipeError:
        return ExitCode.ERROR
    except Exception as e:      # a bug: still one line for the user; DCLI_DEBUG=1 shows where
        if os.environ.get("DCLI_DEBUG"):
            raise
        return fail(f"dcli: internal error: {type(e).__name__}: {e} (set DCLI_DEBUG=1 for details)",
                    ExitCode.ERROR)


def fail(message: str, code: int) -> int:
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    return int(code)


def complete_if_asked(typer_app: typer.Typer, prog: str) -> None:
    """Answer the shell's completion request (`_DCLI_COMPLETE=bash_complete` and the like, set by
    the scripts in completions/) with click's own completion engine."""
    var = f"_{prog.upper()}_COMPLETE"
    instruction = os.environ.get(var)
    if not instruction:
        return
    from click.shell_completion import shell_complete

    exit_now(shell_complete(typer.main.get_command(typer_app), {}, prog, var, instruction))


def exit_now(code: int) -> None:
    """Exit without the interpreter's teardown: the session is closed by now, and gRPC's objects
    finalized at shutdown can deadlock against its own threads (and cost time)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or ExitCode.ERROR
    os._exit(code)
