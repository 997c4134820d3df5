"""One demo node: a real process that campaigns in the election and, in the leader-worker design,
registers in the service registry while it is a worker (the elected leader deregisters itself,
as the seed describes). It reports each step as one JSON line on stdout for the driver."""
from __future__ import annotations

import json
import queue
import sys

from dcli.client import CoordClient
from dcli.recipes import LeaderElection, ServiceRegistry

SESSION_TIMEOUT_S = 4.0        # the server's minimum: a killed node's znodes go soon


def say(event: str, **fields) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def run(server: str, ident: str, election_path: str, registry_root: str | None, service: str,
        address: str) -> int:
    happenings: queue.SimpleQueue = queue.SimpleQueue()
    while True:
        client = CoordClient(server, timeout=SESSION_TIMEOUT_S).start()
        registry = ServiceRegistry(client, registry_root) if registry_root else None
        entry = None
        election = LeaderElection(client, election_path, ident,
                                  on_elected=lambda: happenings.put(("leader", None)),
                                  on_follow=lambda pred: happenings.put(("follow", pred)),
                                  on_revoked=lambda reason: happenings.put(("revoked", reason)),
                                  on_notified=lambda ev: happenings.put(("notified", ev.path)),
                                  on_ended=lambda reason: happenings.put(("ended", reason)))
        say("joined", znode=election.join().rsplit("/", 1)[1])
        while True:
            what, arg = happenings.get()
            if what == "leader":
                if entry is not None:            # the leader leaves the pool of workers
                    entry.unregister()
                    entry = None
                say("leader", znode=election.name)
            elif what == "follow":
                if registry is not None and entry is None:
                    entry = registry.register(service, address, {"node": ident})
                say("follow", znode=election.name, watching=arg)
            elif what == "notified":
                say("notified", path=arg)
            elif what == "revoked":
                say("revoked", reason=arg)
            elif what == "ended":
                say("ended", reason=arg)
                break
        client.close()                           # a new session joins at the end
