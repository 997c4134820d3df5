"""Stands in for `java` when kazoo's own test harness starts "ZooKeeper": it becomes a dcli server.

kazoo's harness (`kazoo/testing/common.py`, `ManagedZooKeeper.run`) writes a `zoo.cfg` and runs
`java -cp ... -D... org.apache.zookeeper.server.quorum.QuorumPeerMain <dir>/zoo.cfg`, stops it with
SIGTERM (keeping `dataDir`) and wipes the directory to reset it. This script is put on PATH as
`java` by `kazoo_suite.py`; it reads the ports, the data directory, the four-letter-word whitelist
and the super digest from that command line and config, turns the harness's JKS keystore into PEM
files for the TLS port, sends its output to `<dir>/zookeeper.log` (which the harness prints when a
test fails) and execs `python -m dcli_server` in its place, so SIGTERM reaches the server itself.

It runs under the kazoo suite's own interpreter (which has pyjks); the dcli server runs under the
interpreter named by DCLI_PYTHON.
"""
from __future__ import annotations

import base64
import os
import sys
import textwrap

MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
SUPER_DIGEST_FLAG = "-Dzookeeper.DigestAuthenticationProvider.superDigest="


def read_cfg(path: str) -> dict[str, str]:
    """zoo.cfg's key=value lines."""
    cfg = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                cfg[key.strip()] = value.strip()
    return cfg


def _pem(kind: str, der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


def keystore_to_pem(keystore: str, password: str, out_dir: str) -> tuple[str, str]:
    """The keystore's first private key and its certificate chain as PEM files (key, cert)."""
    import jks

    ks = jks.KeyStore.load(keystore, password)
    entry = next(iter(ks.private_keys.values()))
    key_path, cert_path = os.path.join(out_dir, "server-key.pem"), os.path.join(out_dir, "server-cert.pem")
    with open(key_path, "w") as f:
        f.write(_pem("PRIVATE KEY", entry.pkey_pkcs8))
    with open(cert_path, "w") as f:
        f.write("".join(_pem("CERTIFICATE", der) for _, der in entry.cert_chain))
    return key_path, cert_path


def server_args(argv: list[str]) -> list[str]:
    """dcli_server's arguments for one `java ... QuorumPeerMain zoo.cfg` command line."""
    if MAIN_CLASS not in argv or argv.index(MAIN_CLASS) + 1 >= len(argv):
        raise SystemExit(f"kazoo_java: not a ZooKeeper start: {' '.join(argv)}")
    cfg_path = argv[argv.index(MAIN_CLASS) + 1]
    cfg = read_cfg(cfg_path)
    if any(k.startswith("server.") for k in cfg):
        raise SystemExit("kazoo_java: a replicated ensemble was asked for; run with ZOOKEEPER_CLUSTER_SIZE=1")
    work_dir = os.path.dirname(cfg_path)
    args = ["--listen", "127.0.0.1:0",
            "--data-dir", os.path.join(cfg["dataDir"], "dcli"),
            "--zk-listen", f"127.0.0.1:{cfg['clientPort']}",
            "--zk-4lw-whitelist", cfg.get("4lw.commands.whitelist", "srvr"),
            "--max-client-cnxns", cfg.get("maxClientCnxns", "60"),
            "--container-check-interval-ms", "1000"]
    digest = [a[len(SUPER_DIGEST_FLAG):] for a in argv if a.startswith(SUPER_DIGEST_FLAG)]
    if digest:
        args += ["--zk-super-digest", digest[-1]]
    if cfg.get("secureClientPort") and os.path.exists(cfg.get("ssl.keyStore.location", "")):
        key, cert = keystore_to_pem(cfg["ssl.keyStore.location"], cfg.get("ssl.keyStore.password", ""),
                                    work_dir)
        args += ["--zk-secure-listen", f"127.0.0.1:{cfg['secureClientPort']}",
                 "--cert-file", cert, "--key-file", key]
    return args


def main(argv: list[str]) -> None:
    args = server_args(argv)
    work_dir = os.path.dirname(argv[argv.index(MAIN_CLASS) + 1])
    log = os.open(os.path.join(work_dir, "zookeeper.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    python = os.environ.get("DCLI_PYTHON", sys.executable)
    os.execv(python, [python, "-m", "dcli_server", *args])


if __name__ == "__main__":
    main(sys.argv[1:])
