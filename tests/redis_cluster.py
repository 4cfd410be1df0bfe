"""A real Redis Cluster of the tests' own: three masters from `redis-server` processes.

`RedisClusterProcess(workdir).start()` starts three ``redis-server --cluster-enabled yes``
on free ports (client port and cluster-bus port both chosen free, `cluster-config-file` in
`workdir`), joins them with ``redis-cli --cluster create ... --cluster-replicas 0
--cluster-yes`` and waits until every node says ``cluster_state:ok``; `.nodes` are the
``"host:port"`` seeds for `REDIS_CLUSTER_URLS`; `.stop()` ends them. With ``replicas=1``
each master gets a replica (six processes), so that `.kill(port)` of a master is followed
by a failover. Also used by `bench/cluster_bench.py`.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

MASTERS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ClusterStartError(RuntimeError):
    """The cluster did not come up (message says which step)."""


class RedisClusterProcess:
    """Three redis-server processes joined into one cluster (see module doc)."""

    def __init__(self, workdir: Path, masters: int = MASTERS, replicas: int = 0):
        for tool in ("redis-server", "redis-cli"):
            if shutil.which(tool) is None:
                raise ClusterStartError(f"{tool} is not installed (apt-get install redis-server)")
        self.workdir = Path(workdir)
        self.replicas = replicas
        self.ports = [_free_port() for _ in range(masters * (1 + replicas))]
        self.bus_ports = [_free_port() for _ in self.ports]
        self.nodes = tuple(f"127.0.0.1:{port}" for port in self.ports)
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        """``redis+cluster://host:port,...`` of the nodes."""
        return "redis+cluster://" + ",".join(self.nodes)

    def start(self, timeout: float = 30.0) -> None:
        """Start the nodes, create the cluster, wait for ``cluster_state:ok`` on each."""
        for port, bus in zip(self.ports, self.bus_ports, strict=True):
            node_dir = self.workdir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            self.procs.append(subprocess.Popen(
                [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-port", str(bus),
                 "--cluster-config-file", str(node_dir / "nodes.conf"),
                 "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0",
                 "--save", "", "--appendonly", "no",
                 "--dir", str(node_dir), "--logfile", str(node_dir / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while self._cli(port, "PING") != "PONG":
                self._check(deadline, f"node {port} did not start")
        created = subprocess.run(
            [shutil.which("redis-cli"), "--cluster", "create", *self.nodes,
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout)
        if created.returncode != 0:
            self.stop()
            raise ClusterStartError(f"redis-cli --cluster create failed: {created.stdout}"
                                    f"{created.stderr}")
        for port in self.ports:
            while "cluster_state:ok" not in self._cli(port, "CLUSTER", "INFO"):
                self._check(deadline, f"node {port} never reported cluster_state:ok")
        if replicas_wanted := self.replicas * (len(self.ports) // (1 + self.replicas)):
            while sum("master_link_status:up" in self._cli(port, "INFO", "replication")
                      for port in self.ports) < replicas_wanted:
                self._check(deadline, "the replicas did not finish their first sync")

    def kill(self, port: int) -> None:
        """SIGKILL the node on `port` and wait for the process to end."""
        proc = self.procs[self.ports.index(port)]
        proc.kill()
        proc.wait(timeout=10)

    def role(self, port: int) -> str:
        """``master`` or ``slave`` (``ROLE`` of the node on `port`)."""
        return self._cli(port, "ROLE").split("\n", 1)[0]

    def _check(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            self.stop()
            raise ClusterStartError(what)
        time.sleep(0.05)

    @staticmethod
    def _cli(port: int, *command: str) -> str:
        done = subprocess.run([shutil.which("redis-cli"), "-p", str(port), *command],
                              capture_output=True, text=True, timeout=10)
        return done.stdout.strip()

    def stop(self) -> None:
        """Terminate every node and wait for it."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs = []
