"""TLS for the clients: every channel to a dcli server is opened here.

The files come from `--cacert`, `--cert` and `--key` (every dcli command) or `DCLI_CACERT`,
`DCLI_CERT` and `DCLI_KEY` (etcdctl's names and meaning): with a CA file the channel is TLS and
the server's certificate must be signed by it; with a certificate and key too, the client proves
who it is (the server's `--client-cert-auth`). Without a CA file the channel is plaintext.

When none of those is given, a node of a local cluster made with `dcli cluster up --tls` is
reached with that cluster's files, found in its cluster.json (the cluster in DCLI_CLUSTER_DIR,
else the default one; or any cluster this process's LocalCluster has read): one flag to make
it, none to use it. The flags and variables always win.

    channel = open_channel("127.0.0.1:7181", options)     # TLS when DCLI_CACERT is set, or the
                                                          # address is a node of a --tls cluster

When a connection fails, `explain(address)` looks at what the server speaks (one TCP connection,
an HTTP/2 preface, the first bytes of the answer) so that a plaintext client of a TLS server, or
the other way round, hears that instead of "connection refused" or a timeout.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from dcli.wire import errors

ENV = {"cacert": "DCLI_CACERT", "cert": "DCLI_CERT", "key": "DCLI_KEY"}
_SETTINGS = 0x04                 # an HTTP/2 SETTINGS frame's type: a plaintext gRPC server's answer
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@dataclass(frozen=True)
class TlsFiles:
    cacert: str = ""
    cert: str = ""
    key: str = ""

    @classmethod
    def from_env(cls) -> TlsFiles:
        return cls(**{name: os.environ.get(var, "") for name, var in ENV.items()})

    @property
    def enabled(self) -> bool:
        return bool(self.cacert)

    def check(self) -> None:
        """UsageError for files that cannot work together."""
        if (self.cert or self.key) and not (self.cert and self.key):
            raise errors.UsageError("--cert and --key go together (DCLI_CERT, DCLI_KEY)")
        if self.cert and not self.cacert:
            raise errors.UsageError("--cert needs --cacert: the server's CA (DCLI_CACERT)")
        for path, flag in ((self.cacert, "--cacert"), (self.cert, "--cert"), (self.key, "--key")):
            if path:
                _read(path, flag)

    def credentials(self):
        import grpc

        self.check()
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.cacert, "--cacert"),
            private_key=_read(self.key, "--key") if self.key else None,
            certificate_chain=_read(self.cert, "--cert") if self.cert else None)


_clusters: dict[str, TlsFiles] = {}        # address -> the files of the local cluster it is a node of
_looked: dict[str, tuple[float, dict[str, TlsFiles]]] = {}      # cluster.json -> (mtime, what it said)


def use_for(addresses, files: TlsFiles) -> None:
    """Reach these addresses (a local cluster's nodes) with `files` unless told otherwise."""
    for address in addresses:
        _clusters[address] = files


def for_address(address: str) -> TlsFiles:
    """The files to reach `address` with: --cacert/--cert/--key (DCLI_CACERT, ...) when given,
    else those of the local --tls cluster it is a node of, else none (plaintext)."""
    given = TlsFiles.from_env()
    if given.cacert or given.cert or given.key:
        return given
    return _clusters.get(address) or _default_cluster().get(address) or given


def _default_cluster() -> dict[str, TlsFiles]:
    """The nodes of the cluster `dcli cluster` uses by default, when it was made with --tls."""
    from dcli.wire.datadir import cluster_dir

    path = Path(os.environ.get("DCLI_CLUSTER_DIR") or cluster_dir()).expanduser() / "cluster.json"
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    seen = _looked.get(str(path))
    if seen is not None and seen[0] == mtime:
        return seen[1]
    found: dict[str, TlsFiles] = {}
    try:
        data = json.loads(path.read_text())
        if data.get("tls"):
            files = TlsFiles(**{k: str(data["tls"][k]) for k in ("cacert", "cert", "key")})
            found = {str(n["address"]): files for n in data["nodes"]}
    except (OSError, ValueError, KeyError, TypeError):
        found = {}                  # not readable now: plaintext, as without it
    _looked[str(path)] = (mtime, found)
    return found


def _read(path: str, flag: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as e:
        raise errors.UsageError(f"cannot read {flag} {path}: {e.strerror or e}") from None


def open_channel(address: str, options=(), tls: TlsFiles | None = None):
    """A gRPC channel to `address`: TLS with the configured files, else plaintext; logged in
    when the process has credentials (dcli.client.auth)."""
    import grpc

    from dcli.client.auth import wrap

    tls = tls if tls is not None else for_address(address)
    if tls.enabled:
        channel = grpc.secure_channel(address, tls.credentials(), options=list(options))
    else:
        channel = grpc.insecure_channel(address, options=list(options))
    return wrap(channel)        # the auth token on every call, when there are credentials


def explain(address: str, tls: TlsFiles | None = None, timeout: float = 2.0) -> str:
    """Why a connection to `address` may have failed for want of (or despite) TLS; "" when the
    server's answer says nothing of the kind. A plaintext client tries a TLS handshake (with no
    checks: only whether the server speaks TLS at all); a TLS client sends HTTP/2's preface,
    which a plaintext gRPC server answers with a SETTINGS frame."""
    import ssl

    tls = tls if tls is not None else for_address(address)
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as s:
            s.settimeout(timeout)
            if not tls.enabled:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                try:
                    with context.wrap_socket(s):
                        return f"the server at {address} speaks TLS: give its CA with --cacert (DCLI_CACERT)"
                except (ssl.SSLError, OSError):
                    return ""
            s.sendall(_PREFACE)
            first = s.recv(9)
    except (OSError, ValueError):
        return ""
    if len(first) >= 4 and first[3] == _SETTINGS:
        return f"the server at {address} does not speak TLS: leave out --cacert (DCLI_CACERT)"
    return ""
