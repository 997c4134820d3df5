"""The systems a failover trial in cluster.py runs on, behind one face.

A trial (cluster.py's run_trial) sees a "system": its node ids, a client address per node,
the leader; connect/wait/on_done/connected/close_client on the client side; kill/poll_leader/
restart on the cluster side. Three systems:

    DcliCluster   dcli's LocalCluster, writers through dcli's CoordClient over gRPC
    DcliKazoo     the same LocalCluster, writers through kazoo on the nodes' ZooKeeper ports
                  (--zk-listen); the cluster side is DcliCluster's (LocalCluster.kill, the
                  leader from Cluster.Status, restart and catch-up)
    ZkEnsemble    three ZooKeeper 3.8 servers (Debian's package) through kazoo

Every process here listens on 127.0.0.1 only and is signalled by its own pid.
"""
from __future__ import annotations

import logging
import signal
import time

from coord import BenchError, Server, four_letter

from dcli.cluster import status as status_rpc
from dcli.cluster.manager import free_ports

SESSION_TIMEOUT_S = 10.0        # the reference's writers' session timeout


class KazooClients:
    """The client side through kazoo: futures are kazoo's IAsyncResult, `connected` its state."""

    def connect(self, servers):
        from kazoo.client import KazooClient
        logging.getLogger("kazoo").setLevel(logging.ERROR)
        zk = KazooClient(hosts=servers, timeout=SESSION_TIMEOUT_S, randomize_hosts=False)
        zk.start(timeout=15)
        return zk

    @staticmethod
    def wait(fut, timeout):
        return fut.get(timeout=timeout)

    @staticmethod
    def on_done(fut, fn):
        fut.rawlink(fn)

    @staticmethod
    def connected(client):
        return client.connected

    @staticmethod
    def close_client(client):
        try:
            client.stop()
            client.close()
        except Exception:
            pass


class DcliCluster:
    """The LocalCluster seen by a failover trial."""
    root = "/bench-failover"

    def __init__(self, cluster, max_s):
        self.cluster, self.max_s = cluster, max_s
        self.ids = [n.id for n in cluster.nodes]

    def address(self, i):
        return self.cluster.node(i).address

    def leader(self, max_s):
        return wait_for_leader(self.cluster, max_s)

    def connect(self, servers):
        from dcli.client import CoordClient
        return CoordClient(servers, timeout=SESSION_TIMEOUT_S).start()

    @staticmethod
    def wait(fut, timeout):
        return fut.result(timeout)

    @staticmethod
    def on_done(fut, fn):
        fut.add_done_callback(fn)

    @staticmethod
    def connected(client):
        return client.connected

    @staticmethod
    def close_client(client):
        client.close()

    def kill(self, i):
        pid = self.cluster.node(i).pid
        self.cluster.kill(i)            # SIGKILL to the pid this LocalCluster started, checked first
        return pid

    def poll_leader(self, ids):
        answers = status_rpc.query({i: self.cluster.node(i).address for i in ids}, timeout=0.3)
        leaders = [i for i, a in answers.items() if getattr(a, "role", "") == "leader"]
        return leaders[0] if leaders else None

    def restart(self, i):
        t = time.monotonic()
        self.cluster.start(i)
        caught_up(self.cluster, i, self.max_s)
        return time.monotonic() - t


class DcliKazoo(KazooClients, DcliCluster):
    """The same LocalCluster, its writers kazoo clients on the nodes' ZooKeeper ports."""
    root = "/bench-failover-zk"

    def __init__(self, cluster, max_s):
        super().__init__(cluster, max_s)
        missing = [n.id for n in cluster.nodes if not n.zk_address]
        if missing:
            raise BenchError("node(s) %s serve no ZooKeeper port (--zk-listen none)" % missing)

    def address(self, i):
        return self.cluster.node(i).zk_address


def wait_for_leader(cluster, max_s):
    """The id every node that is up names as leader, once one says it is the leader."""
    end = time.monotonic() + max_s
    while time.monotonic() < end:
        states = [s for s in cluster.status_all(timeout=0.5) if s.state == "up"]
        leaders = [s.id for s in states if s.role == "leader"]
        if len(leaders) == 1 and all(s.leader_id == leaders[0] for s in states):
            return leaders[0]
        time.sleep(0.05)
    raise BenchError("no leader agreed on within %.0f s: %s" % (max_s, cluster.status_all()))


def caught_up(cluster, i, max_s):
    """Node i is a follower of the leader and has applied what the leader had committed."""
    end = time.monotonic() + max_s
    while time.monotonic() < end:
        states = {s.id: s for s in cluster.status_all(timeout=0.5)}
        me = states[i]
        lead = states.get(me.leader_id) if me.leader_id else None
        if (me.state == "up" and me.role == "follower" and lead is not None and lead.role == "leader"
                and me.applied_index >= lead.commit_index):
            return
        time.sleep(0.05)
    raise BenchError("node %d did not catch up within %.0f s after its restart" % (i, max_s))


class ZkEnsemble(KazooClients):
    """Three ZooKeeper servers on loopback, as shared/reference/zk/ensemble_failover.sh runs them
    (tickTime 2000, initLimit 10, syncLimit 5), on free ports, each stopped by its pid."""
    root = "/failover"

    def __init__(self, found, workdir, max_s):
        self.java, self.conf, self.jar = found
        self.dir = workdir / "zk-ensemble"
        self.max_s = max_s
        self.ids = [1, 2, 3]
        ports = free_ports(9)
        self.client_port = dict(zip(self.ids, ports[0:3]))
        quorum = "".join("server.%d=127.0.0.1:%d:%d\n" % (i, ports[2 + i], ports[5 + i]) for i in self.ids)
        self.servers = {}
        for i in self.ids:
            d = self.dir / ("d%d" % i)
            d.mkdir(parents=True)
            (d / "myid").write_text("%d\n" % i)
            (self.dir / ("zoo%d.cfg" % i)).write_text(
                "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\n"
                "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n%s"
                % (d, self.client_port[i], quorum))

    def start(self, i):
        self.servers[i] = Server("zookeeper-%d" % i, [
            self.java, "-cp", "%s:%s" % (self.conf, self.jar),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", "zoo%d.cfg" % i],
            self.dir / ("zk%d.log" % i), self.dir)

    def up(self):
        for i in self.ids:
            self.start(i)
        return self.leader(self.max_s)

    def stop_all(self):
        for s in self.servers.values():
            s.stop()

    def address(self, i):
        return "127.0.0.1:%d" % self.client_port[i]

    def mode(self, i):
        try:
            for line in four_letter(self.client_port[i], b"srvr", timeout=0.3).decode(errors="replace").splitlines():
                if line.startswith("Mode:"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return None

    def leader(self, max_s):
        end = time.monotonic() + max_s
        while time.monotonic() < end:
            modes = {i: self.mode(i) for i in self.ids if self.servers[i].proc.poll() is None}
            leaders = [i for i, m in modes.items() if m == "leader"]
            if len(leaders) == 1 and all(m in ("leader", "follower") for m in modes.values()):
                return leaders[0]
            time.sleep(0.05)
        raise BenchError("the ZooKeeper ensemble has no leader after %.0f s\n%s" % (
            max_s, "\n".join(s.tail() for s in self.servers.values())))

    def kill(self, i):
        s = self.servers[i]
        s.proc.send_signal(signal.SIGKILL)
        s.stop()            # reaps it and closes its log
        return s.pid

    def poll_leader(self, ids):
        for i in ids:
            if self.mode(i) == "leader":
                return i
        return None

    def restart(self, i):
        t = time.monotonic()
        self.start(i)
        end = t + self.max_s
        while time.monotonic() < end:
            if self.mode(i) == "follower":
                return time.monotonic() - t
            time.sleep(0.05)
        raise BenchError("ZooKeeper server %d did not rejoin within %.0f s" % (i, self.max_s))
