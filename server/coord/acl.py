"""ZooKeeper's ACLs: what a znode's list allows, and the form a list must have.

An ACL entry is (perms, scheme, id): permissions READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16
for `world:anyone`, a `digest:user:base64(sha1(user:password))`, an `ip:address[/bits]`, an
`x509:CN=...` (a TLS client certificate's subject), or, in a request, `auth:` (every
authenticated id of the caller). A caller holds ids: its connection's IP, the subject of the
certificate it presented, the digests it proved with `addauth`, and `super` when that digest is
the server's super digest. The rules are ZooKeeper 3.8's (ZooKeeperServer.checkACL, PrepRequestProcessor.fixupACL):

    check(OPEN, READ, ids, "/a")                    # world:anyone: anyone
    check(((1, "digest", "bob:h..."),), WRITE, ids, "/a")   # NoAuthError unless ids allow it
    fixup("/a", [(31, "auth", "")], ids)            # the caller's digest ids, or InvalidACLError

An empty list (a znode made before ACLs existed) allows everything, as in ZooKeeper.
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
from typing import Iterable, Sequence

from dcli.wire.errors import InvalidACLError, NoAuthError

READ, WRITE, CREATE, DELETE, ADMIN = 1, 2, 4, 8, 16
ALL = READ | WRITE | CREATE | DELETE | ADMIN
Acl = tuple[tuple[int, str, str], ...]
Ids = Sequence[tuple[str, str]]
OPEN: Acl = ((ALL, "world", "anyone"),)
READ_ONLY: Acl = ((READ, "world", "anyone"),)
AUTHENTICATED = ("digest", "x509")      # the ids an `auth` entry expands to (ZooKeeper's isAuthenticated)
MAX_ENTRIES = 1024          # entries in one list: a request cannot make a znode's ACL unbounded

_interned: dict[Acl, Acl] = {OPEN: OPEN, READ_ONLY: READ_ONLY}


def intern(acl: Iterable[tuple[int, str, str]]) -> Acl:
    """One shared tuple per distinct list (ZooKeeper keeps an ACL cache for the same reason)."""
    key = tuple(acl) or OPEN
    if len(_interned) > 100_000:
        return key
    return _interned.setdefault(key, key)


MAX_IDS = 64                # ids one connection may hold: addauth in a loop must not grow without end


def digest_id(credential: bytes) -> str:
    """ZooKeeper's DigestAuthenticationProvider.generateDigest: user:base64(sha1(user:password))."""
    user = credential.split(b":", 1)[0].decode("utf-8", errors="replace")
    return f"{user}:{base64.b64encode(hashlib.sha1(credential).digest()).decode()}"


def add_auth(ids: list[tuple[str, str]], scheme: str | None, credential: bytes | None,
             super_digest: str | None = None) -> bool:
    """ZooKeeper's addauth on a connection's `ids` (its `ip` id first): `digest user:password`
    adds the digest id (and `super` when it is the server's super digest), `ip` its address
    again. False for another scheme or a malformed credential (ZooKeeper's AUTHFAILED)."""
    if scheme == "digest" and credential and b":" in credential:
        entries = [("digest", digest_id(credential))]
        if super_digest is not None and entries[0][1] == super_digest:
            entries.append(("super", ""))
    elif scheme == "ip" and ids:
        entries = [ids[0]]
    else:
        return False
    for entry in entries:
        if entry not in ids:
            if len(ids) >= MAX_IDS:
                return False
            ids.append(entry)
    return True


_RDN_KEYS = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
             "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L", "domainComponent": "DC",
             "emailAddress": "EMAILADDRESS", "serialNumber": "SERIALNUMBER"}


def x509_id(subject) -> str:
    """A certificate's subject (ssl's getpeercert()['subject']) as Java's X500Principal.getName()
    writes it, most specific first: `CN=client,O=dcli` (ZooKeeper's x509 id)."""
    parts = []
    for rdn in reversed(subject or ()):
        parts.append("+".join(f"{_RDN_KEYS.get(key, key)}={_escape(value)}" for key, value in rdn))
    return ",".join(parts)


def _escape(value: str) -> str:
    out = "".join("\\" + c if c in ',+"\\<>;' else c for c in value)
    if out.startswith((" ", "#")):
        out = "\\" + out
    return out[:-1] + "\\ " if out.endswith(" ") else out


def client_info(ids: Ids) -> list[tuple[str, str]]:
    """whoAmI's (scheme, user) pairs: a digest shows its user name, not its hash."""
    return [(scheme, ident.split(":", 1)[0] if scheme == "digest" else ident) for scheme, ident in ids]


def is_super(ids: Ids) -> bool:
    return any(scheme == "super" for scheme, _ in ids)


def check(acl: Acl, perm: int, ids: Ids, path: str) -> None:
    """NoAuthError unless an entry of `acl` grants `perm` to one of `ids`."""
    if not acl or is_super(ids):
        return
    for perms, scheme, ident in acl:
        if not perms & perm:
            continue
        if scheme == "world" and ident == "anyone":
            return
        for held_scheme, held in ids:
            if held_scheme != scheme:
                continue
            if scheme in ("digest", "x509") and held == ident:
                return
            if scheme == "ip" and ip_matches(held, ident):
                return
    raise NoAuthError(path)


def allows(acl: Acl, perm: int, ids: Ids) -> bool:
    try:
        check(acl, perm, ids, "")
    except NoAuthError:
        return False
    return True


def fixup(path: str, acl: Iterable[tuple[int, str, str]], ids: Ids) -> Acl:
    """A request's list as it will be stored: duplicates dropped, `auth` expanded to the caller's
    authenticated (digest) ids; InvalidACLError for an empty list, an unknown scheme or a
    malformed id."""
    unique: list[tuple[int, str, str]] = []
    for entry in acl:
        if entry not in unique:
            unique.append(entry)
        if len(unique) > MAX_ENTRIES:
            raise InvalidACLError(path)
    if not unique:
        raise InvalidACLError(path)
    out: list[tuple[int, str, str]] = []
    for perms, scheme, ident in unique:
        if scheme == "world" and ident == "anyone":
            out.append((perms, scheme, ident))
        elif scheme == "auth":
            mine = [(perms, held_scheme, held) for held_scheme, held in ids if held_scheme in AUTHENTICATED]
            if not mine:
                raise InvalidACLError(path)
            out.extend(mine)
        elif scheme == "digest" and _digest_valid(ident):
            out.append((perms, scheme, ident))
        elif scheme == "ip" and ip_valid(ident):
            out.append((perms, scheme, ident))
        elif scheme == "x509" and ident:
            out.append((perms, scheme, ident))
        else:
            raise InvalidACLError(path)
    return intern(out)


def redact(acl: Acl) -> Acl:
    """The list as one without ADMIN sees it: a digest's hash hidden (ZooKeeper 3.8's getACL)."""
    return tuple((perms, scheme, ident.split(":", 1)[0] + ":x" if scheme == "digest" else ident)
                 for perms, scheme, ident in acl)


def _digest_valid(ident: str) -> bool:
    # ZooKeeper: id.split(":").length == 2 (Java's split drops trailing empty strings)
    parts = ident.split(":")
    while parts and parts[-1] == "":
        parts.pop()
    return len(parts) == 2


def _network(expr: str):
    address, _, bits = expr.partition("/")
    try:
        ip = ipaddress.ip_address(address)
        prefix = int(bits) if bits else ip.max_prefixlen
    except ValueError:
        return None
    if not 0 <= prefix <= ip.max_prefixlen:
        return None
    return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)


def ip_valid(expr: str) -> bool:
    return _network(expr) is not None


def ip_matches(address: str, expr: str) -> bool:
    network = _network(expr)
    try:
        return network is not None and ipaddress.ip_address(address) in network
    except ValueError:
        return False
