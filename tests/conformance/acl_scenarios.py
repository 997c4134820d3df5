"""The ACL scenarios (digest, ip, world and auth ids; each permission where ZooKeeper asks for it;
getACL with and without ADMIN, a digest's hash hidden; setACL's version; malformed lists), run by
the live comparison (test_zk_acl_back_to_back.py) and replayed from ZooKeeper's recorded answers
(recording.py)."""
from __future__ import annotations

from kazoo.security import ACL, Id, make_acl, make_digest_acl

from tests.conformance.transcript import Transcript


def _acls(client, path):
    acl, stat = client.get_acls(path)
    return sorted((a.perms, a.id.scheme, a.id.id) for a in acl), stat


def acl_session(connect, address, root):
    owner, other, nobody = connect(address), connect(address), connect(address)
    owner.add_auth("digest", "owner:pw")
    other.add_auth("digest", "other:pw")
    t = Transcript(owner)
    t.add_session(other, "other")
    t.add_session(nobody, "nobody")
    mine = make_digest_acl("owner", "pw", all=True)
    t.do("create root", owner.create, root, b"")
    t.do("create digest-only", owner.create, f"{root}/d", b"secret", acl=[mine])
    t.do("owner reads", owner.get, f"{root}/d")
    t.do("nobody reads", nobody.get, f"{root}/d")
    t.do("nobody lists", nobody.get_children, f"{root}/d")
    t.do("nobody writes", nobody.set, f"{root}/d", b"x")
    t.do("nobody creates below", nobody.create, f"{root}/d/kid")
    t.do("nobody reads the acl", _acls, nobody, f"{root}/d")
    t.do("owner reads the acl", _acls, owner, f"{root}/d")
    t.do("create world-read", owner.create, f"{root}/r", b"", acl=[mine, make_acl("world", "anyone", read=True)])
    t.do("other reads the acl without admin", _acls, other, f"{root}/r")
    t.do("other writes", other.set, f"{root}/r", b"x")
    t.do("other creates below", other.create, f"{root}/r/kid")
    t.do("owner creates an open kid", owner.create, f"{root}/r/kid", b"", acl=[make_acl("world", "anyone", all=True)])
    t.do("other deletes the open kid", other.delete, f"{root}/r/kid")
    t.do("other writes the open kid", other.set, f"{root}/r/kid", b"y")
    t.do("check in a multi", lambda: (lambda tx: (tx.check(f"{root}/d", 0), tx.commit())[1])(nobody.transaction()))
    t.do("setAcl at a wrong version", owner.set_acls, f"{root}/r", [mine], version=5)
    t.do("setAcl at its version", owner.set_acls, f"{root}/r", [mine, make_acl("world", "anyone", read=True,
                                                                                   admin=True)], version=0)
    t.do("nobody sets the acl (admin)", nobody.set_acls, f"{root}/r", [make_acl("world", "anyone", all=True)])
    t.do("acl after", _acls, owner, f"{root}/r")
    t.do("create with auth", owner.create, f"{root}/a", b"", acl=[make_acl("auth", "", read=True, write=True)])
    t.do("the auth acl expanded", _acls, owner, f"{root}/a")
    t.do("create with auth, no digest", nobody.create, f"{root}/a2", b"", acl=[make_acl("auth", "", all=True)])
    t.do("create with ip", nobody.create, f"{root}/i", b"", acl=[make_acl("ip", "127.0.0.1", all=True)])
    t.do("read by ip", nobody.get, f"{root}/i")
    t.do("create with a far ip", nobody.create, f"{root}/f", b"", acl=[make_acl("ip", "10.0.0.0/8", all=True)])
    t.do("read by a far ip", nobody.get, f"{root}/f")
    for label, bad in (("digest without a hash", ACL(31, Id("digest", "nohash"))),
                       ("unknown scheme", ACL(31, Id("nosuch", "x"))),
                       ("bad ip", ACL(31, Id("ip", "300.1.1.1"))), ("ip bits", ACL(31, Id("ip", "127.0.0.1/33"))),
                       ("world someone", ACL(31, Id("world", "someone")))):
        t.do(f"create with {label}", nobody.create, f"{root}/bad", b"", acl=[bad])
    t.do("duplicates dropped", owner.create, f"{root}/dup", b"", acl=[mine, mine])
    t.do("dup acl", _acls, owner, f"{root}/dup")
    for path in ("d", "r/kid", "r", "a", "i", "f", "dup"):
        t.do(f"delete {path}", owner.delete, f"{root}/{path}")
    t.do("delete root", owner.delete, root)
    return t.steps


def exists_without_read(connect, address, root):
    owner, nobody = connect(address), connect(address)
    owner.add_auth("digest", "owner:pw")
    t = Transcript(owner)
    t.add_session(nobody, "nobody")
    t.do("create", owner.create, root, b"", acl=[make_digest_acl("owner", "pw", all=True)])
    t.do("nobody stats it", nobody.exists, root)
    t.do("delete", owner.delete, root)
    return t.steps
