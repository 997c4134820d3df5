"""--embedded starts a server in the shell's process; the CLI's help never imports prompt_toolkit."""
import os
import socket
import subprocess
import sys

from tests.conftest import ROOT
from tests.shell.conftest import ENTRY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, tmp_path, **env):
    e = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), **env)
    e.pop("DCLI_SERVER", None)
    return subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, timeout=120,
                          env=e, cwd=ROOT)


def test_embedded_server_serves_and_keeps_its_data(tmp_path):
    addr = f"127.0.0.1:{free_port()}"
    r = run(["shell", "--embedded", "--server", addr, "-c", "create /emb x; get /emb"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "Created /emb\nx\n"
    assert "starting an embedded one" in r.stderr.decode()
    assert (tmp_path / "data" / "dcli" / "node-1").is_dir()
    again = run(["shell", "--embedded", "--server", addr, "-c", "get /emb"], tmp_path)
    assert again.stdout.decode() == "x\n", again.stderr       # the default data dir persisted


def test_without_embedded_an_absent_server_fails(tmp_path):
    addr = f"127.0.0.1:{free_port()}"
    r = run(["shell", "--server", addr, "--dial-timeout", "0.5", "-c", "get /a"], tmp_path)
    assert r.returncode == 5
    assert "Not connected" in r.stderr.decode()


def test_help_imports_no_group_and_no_grpc():
    code = ("import sys\n" + ENTRY.replace("main.main()\n", "") +
            "try:\n    main.run(main.app, ['--help'], 'dcli')\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in sys.modules if m.startswith(('prompt_toolkit', 'dcli.shell', 'dcli_server', 'grpc', 'dcli.cli.zk', 'dcli.client'))]\n"
            "print(bad)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, timeout=60)
    assert r.stdout.decode().strip().endswith("[]"), r.stdout.decode()[-500:]


def test_lazy_groups_show_their_own_help():
    """`dcli --help` reads each group's line from main.GROUPS without importing it: the line must
    be the group's own help, and every group must load."""
    import importlib

    from dcli.cli import main
    import click

    for name, (module, line) in main.GROUPS.items():
        if name not in main.COMMANDS:
            assert importlib.import_module(module).app.info.help == line, name
    loaded = main.LazyGroup(name="dcli").load_all()
    assert sorted(loaded) == sorted(main.GROUPS)
    assert {n for n, c in loaded.items() if not isinstance(c, click.Group)} == main.COMMANDS
