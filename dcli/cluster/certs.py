"""A local certificate authority: a CA, and certificates it signs for nodes and clients.

For learners and tests on one machine (`dcli cluster up --tls` will use it), not a PKI: the CA's
key sits beside its certificate, readable by its owner only. Keys are ECDSA P-256, certificates
are valid for a year by default, and a node's certificate names 127.0.0.1, ::1 and localhost
(and any other host given) so clients can check it by the address they dial.

    ca = LocalCA.create(Path("/tmp/certs"))                       # ca.pem, ca-key.pem
    node = ca.issue("node-1", hosts=["127.0.0.1"], server=True)    # node-1.pem, node-1-key.pem
    client = ca.issue("client", client=True)
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")
DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _write(path: Path, data: bytes, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dcli local CA"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class LocalCA:
    def __init__(self, directory: Path, cert, key):
        self.directory = directory
        self._cert = cert
        self._key = key

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.pem"

    @classmethod
    def create(cls, directory: Path, days: int = 365) -> LocalCA:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        directory.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(_name("dcli local CA")).issuer_name(_name("dcli local CA"))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - DAY).not_valid_after(now + days * DAY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        _write(directory / "ca-key.pem", _key_pem(key), private=True)
        _write(directory / "ca.pem", cert.public_bytes(serialization.Encoding.PEM))
        return cls(directory, cert, key)

    @classmethod
    def load(cls, directory: Path) -> LocalCA:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca-key.pem").read_bytes(), password=None)
        return cls(directory, cert, key)

    def issue(self, name: str, *, hosts: Sequence[str] = (), server: bool = False, client: bool = False,
              days: int = 365, not_before_days: int = -1) -> Issued:
        """A certificate `name`.pem and its key `name`-key.pem, signed by this CA. `server`:
        usable by a node's listeners (names LOCAL_HOSTS and `hosts`); `client`: usable to prove
        a client (or a node dialling a peer). `not_before_days`/`days` place its validity (a
        test makes an expired one with days=-1)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID

        key = _new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + \
                 ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(name)).issuer_name(self._cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now + not_before_days * DAY).not_valid_after(now + days * DAY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
        if server:
            names = []
            for host in dict.fromkeys([*LOCAL_HOSTS, *hosts]):
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        issued = Issued(self.directory / f"{name}.pem", self.directory / f"{name}-key.pem")
        _write(issued.key, _key_pem(key), private=True)
        _write(issued.cert, cert.public_bytes(serialization.Encoding.PEM))
        return issued
