"""Recipes built on the public client API only: the seed's leader election, service registry
and discovery, locks and group membership (kazoo's and etcd's recipes are the model)."""
from dcli.recipes.election import Candidate, LeaderElection, LeaderObserver, candidates
from dcli.recipes.lock import Lock, ReadLock, WriteLock
from dcli.recipes.party import Party
from dcli.recipes.registry import Discovery, Instance, Registration, ServiceRegistry

__all__ = ["Candidate", "LeaderElection", "LeaderObserver", "candidates", "Lock", "ReadLock",
           "WriteLock", "Party", "Discovery", "Instance", "Registration", "ServiceRegistry"]
