"""The node's broker reaches its own tree in process (dcli_server.local_client), not through the
client port: with authentication on it needs no token, and after a SIGKILL the restarted broker
takes over the session it had by its id alone (no password on disk) and closes it, then serves
topics, produce and a group's consume again, with committed offsets in the tree."""
from __future__ import annotations

import re

from dcli.client import CoordClient
from dcli.client import auth as client_auth
from tests.conftest import ServerProcess, run_cli
from tests.waiting import eventually

WAIT_S = 60
ROOT_PASSWORD = "r00t-Pa55word-b41c"


def test_with_auth_on_the_broker_registers_again_after_a_kill_and_serves(tmp_path):
    srv = ServerProcess(tmp_path / "data", "--log-level", "info",
                        "--group-initial-rebalance-delay-ms", "0").start()
    anonymous = {"DCLI_USER": "", "DCLI_PASSWORD": ""}
    root = {"DCLI_USER": "root", "DCLI_PASSWORD": ROOT_PASSWORD}

    def dcli(*args: str, env=None):
        return run_cli(*args, server=srv, env=env or root)

    try:
        added = dcli("user", "add", "root", "--new-user-password", ROOT_PASSWORD, env=anonymous)
        assert added.returncode == 0, added.stderr
        on = dcli("auth", "enable", env=anonymous)
        assert on.returncode == 0, on.stderr
        assert dcli("kafka", "topics", "--list", env=anonymous).returncode == 6     # auth is on
        noted = srv.data_dir / "broker" / "membership-session"
        before = noted.read_text().split()
        assert len(before) == 1 and re.fullmatch(r"[0-9a-f]+", before[0])        # an id, no password
        srv.kill()
        srv.start()
        eventually(lambda: f"closed its previous session 0x{before[0]}" in srv.log(), WAIT_S,
                   "the restarted broker to close the session it had")
        made = dcli("kafka", "topics", "--create", "--topic", "t", "--partitions", "2")
        assert made.returncode == 0, made.stderr
        sent = run_cli("kafka", "console-producer", "--topic", "t", server=srv, input=b"one\ntwo\n", env=root)
        assert sent.returncode == 0, sent.stderr
        read = dcli("kafka", "console-consumer", "--topic", "t", "--group", "g", "--from-beginning",
                    "--max-messages", "2")
        assert sorted(read.stdout.decode().split()) == ["one", "two"], read.stderr
        lag = dcli("kafka", "consumer-groups", "--describe", "--group", "g")
        rows = [line.split() for line in lag.stdout.decode().splitlines()[2:] if line.strip()]
        committed = sum(int(row[3]) for row in rows if row[3].isdigit())
        assert lag.returncode == 0 and committed == 2, lag.stdout            # in the tree
        client_auth.configure("root", ROOT_PASSWORD)
        with CoordClient(srv.address) as zk:
            assert zk.get_children("/brokers/ids") == ["1"]
            owner = zk.exists("/brokers/ids/1").ephemeralOwner
        assert noted.read_text().split() == [f"{owner:x}"]
        assert ROOT_PASSWORD.encode() not in noted.read_bytes()
    finally:
        client_auth.configure(None, None)
        srv.kill()
    assert "Traceback" not in srv.log()
