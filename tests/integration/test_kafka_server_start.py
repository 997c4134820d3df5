"""`kafka-server-start server.properties`: a dcli server configured from a Kafka properties file."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, _readline, run_cli

ENTRY = "from dcli.cli.kafka.server_start import main; main()"


def test_a_kafka_properties_file_starts_a_server(tmp_path):
    props = tmp_path / "server.properties"
    logs = tmp_path / "kafka-logs"
    props.write_text("# quickstart\nbroker.id=7\nlisteners=PLAINTEXT://:0\n"
                     f"log.dirs={logs}\nnum.partitions=2\nauto.create.topics.enable=false\n")
    proc = subprocess.Popen([sys.executable, "-c", ENTRY, str(props)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    try:
        line = _readline(proc, 30)
        assert line.startswith("dcli server listening on 127.0.0.1:"), line
        address = line.split()[4].rstrip(",")
        r = run_cli("kafka", "topics", "--create", "--topic", "chat", "--bootstrap-server", address)
        assert r.stdout.decode() == "Created topic chat.\n", r.stderr
        out = run_cli("kafka", "topics", "--describe", "--topic", "chat", "--bootstrap-server", address)
        lines = out.stdout.decode().splitlines()
        assert "PartitionCount: 2" in lines[0]                         # num.partitions
        assert lines[1].endswith("Leader: 7\tReplicas: 7\tIsr: 7")      # broker.id
        assert (logs / "broker" / "chat-0").is_dir() and (logs / "broker" / "chat-1").is_dir()
        r = run_cli("kafka", "console-producer", "--topic", "other", "--bootstrap-server", address, input=b"x\n")
        assert r.returncode != 0                                        # auto.create.topics.enable=false
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_bad_command_lines_and_files(tmp_path):
    def start(*args):
        return subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, cwd=ROOT, timeout=60)
    r = start()
    assert r.returncode == 2 and r.stderr.decode().startswith("USAGE: kafka-server-start")
    r = start(str(tmp_path / "missing.properties"))
    assert r.returncode == 2 and "cannot read" in r.stderr.decode()
    bad = tmp_path / "bad.properties"
    bad.write_text(f"listeners=nonsense\nlog.dirs={tmp_path / 'l'}\n")
    r = start(str(bad))
    assert r.returncode == 2 and r.stderr.decode() == "Invalid listener: nonsense (expected NAME://host:port)\n"
    bad.write_text(f"listeners=PLAINTEXT://:0\nlog.dirs={tmp_path / 'l'}\nnum.partitions=abc\n")
    r = start(str(bad))
    assert r.returncode == 2 and "num.partitions" in r.stderr.decode()
