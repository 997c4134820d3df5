"""The README's cluster walk-through on a cluster with TLS everywhere and auth on.

`dcli cluster up --nodes 3 --tls`, an administrator and a user added, `dcli auth enable`: then
every command of the README's cluster blocks, as a reader pastes them with the user in the
environment, must end as the page says and print what it shows, but for what TLS and auth add
(the status's TLS lines, the `dcli` znode that holds the users).
"""
from __future__ import annotations

import dataclasses
import subprocess

from dcli.client import auth as client_auth
from dcli.cluster.manager import LocalCluster
from tests.cluster_fixture import Cluster
from tests.doc_replay import ROOT, SERVER_ARGS, Target, make_leader, matches, parse, run


@dataclasses.dataclass
class SecureTarget(Target):
    user: str = ""
    password: str = ""

    def env(self, home):
        env = super().env(home)
        env.update(DCLI_USER=self.user, DCLI_PASSWORD=self.password)
        return env


def _without_security(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.startswith("TLS on: "):
            continue
        line = line.replace("ZooKeeper protocol (TLS): ", "ZooKeeper protocol: ")
        if line.startswith("[") and line.endswith("]"):         # `ls /`: the users' znode
            line = "[" + ", ".join(c for c in line[1:-1].split(", ") if c != "dcli") + "]"
        out.append(line)
    return out


def _setup(target: Target, home, *argv: str) -> str:
    proc = subprocess.run(["dcli", *argv], env=target.env(home), cwd=home, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=60)
    assert proc.returncode == 0, proc.stdout.decode()
    return proc.stdout.decode()


def test_the_readme_cluster_walkthrough_works_with_tls_and_auth_on(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    manager = LocalCluster(tmp_path / "cluster", start_timeout=30.0, stop_grace=10.0)
    cluster = Cluster(manager)
    try:
        manager.up(nodes=3, base_port=0, extra_args=list(SERVER_ARGS), tls=True)
        admin = Target(cluster.addresses, cluster.directory)
        assert "TLS on: clients (with certificates) and peers (mutual)" in _setup(admin, home, "cluster", "status")
        _setup(admin, home, "user", "add", "root", "--new-user-password", "root-pw")
        _setup(admin, home, "user", "add", "alice", "--new-user-password", "alice-pw")
        assert _setup(admin, home, "auth", "enable") == "Authentication Enabled\n"
        alice = SecureTarget(cluster.addresses, cluster.directory,
                             zk_addresses=[n.zk_address for n in manager.nodes], user="alice", password="alice-pw")
        refused = subprocess.run(["dcli", "zk", "ls", "/"], env=admin.env(home), cwd=home,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        assert refused.returncode == 6, refused.stdout.decode()

        client_auth.configure("root", "root-pw")      # this process moves the leader: an admin's act
        blocks = [b for b in parse((ROOT / "README.md").read_text()) if b.nodes == 3]
        assert len(blocks) >= 2 and any("cluster kill" in c.text for b in blocks for c in b.commands)
        ran = 0
        for block in blocks:
            if block.leader is not None:
                make_leader(manager, block.leader)
            for command in block.commands:
                actual, code = run(command, alice, home)
                shown = _without_security(actual)
                assert (code, matches(command.expected, shown)) == (command.exit_code, True), (
                    f"$ {command.text}\n  exit {code}\n" + "\n".join(actual))
                ran += 1
        assert ran >= 8
    finally:
        client_auth.configure(None, None)
        try:
            manager.down()
        finally:
            manager.close()
