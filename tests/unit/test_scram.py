"""SCRAM-SHA-256 against RFC 7677's test vector; tokens; the guessing limit; the exchange as the
server runs it (over an in-memory user table)."""
from __future__ import annotations

import base64

import pytest

from dcli.wire import errors, scram
from dcli_server.auth import tokens
from dcli_server.auth.authenticator import Authenticator
from dcli_server.auth.limiter import FailureLimiter, keys_for
from dcli_server.auth.store import UserRecord

# RFC 7677, section 3: user "user", password "pencil"
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
CLIENT_FIRST = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
CLIENT_FINAL = ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")


def test_the_client_side_makes_rfc_7677s_messages():
    client = scram.ClientExchange("user", "pencil", client_nonce=CLIENT_NONCE)
    assert client.first() == CLIENT_FIRST
    assert client.final(SERVER_FIRST) == CLIENT_FINAL
    client.verify(SERVER_FINAL)
    with pytest.raises(errors.AuthenticationFailedError):
        client.verify("v=" + base64.b64encode(b"x" * 32).decode())


def test_the_server_side_checks_rfc_7677s_proof_with_the_stored_keys_alone():
    credential = scram.Credential.from_password("pencil", salt=SALT, iterations=4096)
    user, nonce, bare = scram.parse_client_first(CLIENT_FIRST)
    assert (user, nonce, bare) == ("user", CLIENT_NONCE, CLIENT_FIRST[3:])
    assert scram.verify_client_final(credential, bare, SERVER_FIRST, CLIENT_FINAL) == SERVER_FINAL
    wrong = scram.Credential.from_password("pencil!", salt=SALT, iterations=4096)
    with pytest.raises(errors.AuthenticationFailedError):
        scram.verify_client_final(wrong, bare, SERVER_FIRST, CLIENT_FINAL)
    # the proof is bound to the nonce the server chose
    with pytest.raises(errors.AuthenticationFailedError):
        scram.verify_client_final(credential, bare, SERVER_FIRST.replace("k0,", "k1,"), CLIENT_FINAL)


def test_a_credential_keeps_no_password_and_round_trips_as_json():
    c = scram.Credential.from_password("pencil")
    assert len(c.salt) == scram.SALT_BYTES and c.iterations >= 4096
    assert b"pencil" not in repr(c.to_json()).encode()
    assert scram.Credential.from_json(c.to_json()) == c
    assert scram.Credential.from_password("pencil").salt != c.salt        # salted afresh each time


@pytest.mark.parametrize("bad", [
    scram.Credential(b"s" * 16, 1000, b"k" * 32, b"k" * 32),          # too few iterations
    scram.Credential(b"s" * 16, 1 << 30, b"k" * 32, b"k" * 32),       # a login would take minutes
    scram.Credential(b"s", 4096, b"k" * 32, b"k" * 32),
    scram.Credential(b"s" * 16, 4096, b"k" * 31, b"k" * 32),
])
def test_credentials_from_the_network_are_checked(bad):
    with pytest.raises(errors.BadArgumentsError):
        bad.check()


@pytest.mark.parametrize("message", ["", "y,,n=a,r=b", "n,,n=a", "n,,garbage", "n,," + "x" * 5000])
def test_a_malformed_client_first_is_a_bad_argument(message):
    with pytest.raises(errors.BadArgumentsError):
        scram.parse_client_first(message)


def test_names_are_escaped_as_the_rfc_says():
    assert scram.escape_name("a,b=c") == "a=2Cb=3Dc"
    assert scram.unescape_name("a=2Cb=3Dc") == "a,b=c"


# -- tokens -----------------------------------------------------------------------------------


def test_a_token_is_good_until_it_expires_and_only_with_its_key():
    key = b"k" * 32
    token = tokens.sign(key, tokens.Claims("alice", 7, expires=1000))
    assert tokens.verify(key, token, now=999) == tokens.Claims("alice", 7, 1000)
    with pytest.raises(errors.InvalidAuthTokenError, match="expired"):
        tokens.verify(key, token, now=1000)
    with pytest.raises(errors.InvalidAuthTokenError):
        tokens.verify(b"x" * 32, token, now=999)
    prefix, payload, mac = token.split(".")
    forged = tokens.sign(b"x" * 32, tokens.Claims("root", 7, expires=5000)).split(".")[1]
    for bad in (f"{prefix}.{forged}.{mac}", "v1..", "nonsense", token + "x", "v1." + "a" * 5000):
        with pytest.raises(errors.InvalidAuthTokenError):
            tokens.verify(key, bad, now=999)


# -- the guessing limit -------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_failures_past_the_limit_are_refused_for_a_growing_while():
    clock = Clock()
    limiter = FailureLimiter(base_s=1.0, max_s=8.0, clock=clock)
    keys = keys_for("10.0.0.1", "root")
    for _ in range(4):
        limiter.failed(keys)
        limiter.check(keys)                 # not refused yet
    limiter.failed(keys)                    # the fifth
    with pytest.raises(errors.TooManyAuthFailuresError) as refused:
        limiter.check(keys)
    assert refused.value.exit_code == 6
    limiter.check(keys_for("10.0.0.2", "root"))    # another address is not slowed down
    clock.now += 1.0
    limiter.check(keys)
    limiter.failed(keys)                    # the sixth: twice as long
    clock.now += 1.5
    with pytest.raises(errors.TooManyAuthFailuresError):
        limiter.check(keys)
    clock.now += 0.5
    limiter.check(keys)
    limiter.succeeded(keys)
    limiter.failed(keys)
    limiter.check(keys)                     # a success started the count again


def test_the_limiter_forgets_the_oldest_keys_past_its_size():
    limiter = FailureLimiter(max_keys=10, clock=Clock())
    for i in range(100):
        limiter.failed(keys_for(f"10.0.0.{i}", "u"))
    assert len(limiter._entries) <= 10


# -- the exchange, as the server runs it ------------------------------------------------------


class Store:
    """AuthStore's reads, over a dict."""

    def __init__(self):
        self.records: dict[str, UserRecord] = {}
        self._key = b"k" * 32

    def enabled(self):
        return True

    def key(self):
        return self._key

    def user(self, name):
        return self.records.get(name)

    def add(self, name, password, roles=(), generation=1):
        self.records[name] = UserRecord(name, scram.Credential.from_password(password), tuple(roles), generation)


def login(auth: Authenticator, user: str, password: str, host: str = "10.0.0.1") -> str:
    client = scram.ClientExchange(user, password)
    exchange_id, server_first = auth.begin(client.first(), host)
    server_final, token = auth.finish(exchange_id, client.final(server_first), host)
    client.verify(server_final)
    return token


def test_a_login_gives_a_token_that_names_the_user_and_ends_with_a_new_password():
    store = Store()
    store.add("root", "secret")
    store.add("alice", "pw", generation=5)
    auth = Authenticator(store, token_ttl_s=300)
    root = auth.principal(login(auth, "root", "secret"))
    assert (root.name, root.admin) == ("root", True)
    token = login(auth, "alice", "pw")
    assert auth.principal(token) == tokens.Principal("alice", admin=False)
    store.add("alice", "new", generation=9)         # a new password: a new record generation
    with pytest.raises(errors.InvalidAuthTokenError, match="revoked"):
        auth.principal(token)
    with pytest.raises(errors.InvalidAuthTokenError, match="authentication required"):
        auth.principal("")


def test_wrong_passwords_and_unknown_users_fail_alike_and_count():
    store = Store()
    store.add("root", "secret")
    auth = Authenticator(store, limiter=FailureLimiter(clock=Clock()))
    for user in ("root", "nobody", "root", "nobody"):
        with pytest.raises(errors.AuthenticationFailedError) as e:
            login(auth, user, "guess")
        assert str(e.value) == "authentication failed, invalid user ID or password"
    for _ in range(3):
        with pytest.raises(errors.AuthenticationFailedError):
            login(auth, "root", "guess")
    with pytest.raises(errors.TooManyAuthFailuresError):
        login(auth, "root", "secret")               # refused for now, right password or not
    assert login(auth, "root", "secret", host="10.0.0.9")
