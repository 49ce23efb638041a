"""A local Redis Cluster for the scale benchmark and the cluster tests: `masters` primaries, each
with `replicas_per_master` replicas, every one a `redis-server` (or `valkey-server`) process on
free loopback ports, joined with CLUSTER MEET, the 16384 slots split evenly with CLUSTER
ADDSLOTSRANGE and the replicas attached with CLUSTER REPLICATE (what `redis-cli --cluster create`
does, without needing redis-cli). Without persistence: it lives as long as the run that
started it."""

from __future__ import annotations

import contextlib
import functools
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from worker.embedded import free_port, redis_server_binary

SLOTS = 16384
NODE_TIMEOUT_MS = 2000  # how long a primary may be silent before its replica is promoted
READY_TIMEOUT_S = 30.0


@dataclass
class Node:
    port: int
    bus_port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def node_id(self) -> str:
        with self.client() as client:
            return str(client.execute_command("CLUSTER MYID").decode())

    def role(self) -> str:
        with self.client() as client:
            return str(client.execute_command("ROLE")[0].decode())

    def primary_port(self) -> int:
        """A replica's primary."""
        with self.client() as client:
            return int(client.info("replication")["master_port"])


@dataclass
class LocalCluster:
    directory: Path
    masters: int = 3
    replicas_per_master: int = 1
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A seed node's URL: the cluster client finds the others from it."""
        return f"redis://{self.nodes[0].address}/0"

    def start(self) -> None:
        count = self.masters * (1 + self.replicas_per_master)
        self.nodes = [self._start_node(index) for index in range(count)]
        for node in self.nodes:
            _wait(functools.partial(_answers, node), f"{node.address} to answer")
        primaries = self.nodes[: self.masters]
        for index, node in enumerate(primaries):
            first = index * SLOTS // self.masters
            last = (index + 1) * SLOTS // self.masters - 1
            with node.client() as client:
                client.execute_command("CLUSTER ADDSLOTSRANGE", first, last)
        seed = self.nodes[0]
        for node in self.nodes[1:]:
            with node.client() as client:
                client.execute_command("CLUSTER MEET", "127.0.0.1", seed.port, seed.bus_port)
        _wait(lambda: all(_known(node) == count for node in self.nodes), "every node to meet")
        for index, node in enumerate(self.nodes[self.masters :]):
            primary = primaries[index % self.masters].node_id()
            with node.client() as client:
                client.execute_command("CLUSTER REPLICATE", primary)
        _wait(self.healthy, "the cluster to be ok with every replica in sync")

    def _start_node(self, index: int) -> Node:
        port, bus_port = free_port(), free_port()
        directory = self.directory / f"node-{index}"
        directory.mkdir(parents=True, exist_ok=True)
        command = [
            redis_server_binary(),
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
            *("--cluster-enabled", "yes", "--cluster-port", str(bus_port)),
            *("--cluster-config-file", "nodes.conf"),
            *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
            *("--save", "", "--appendonly", "no"),
        ]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        return Node(port, bus_port, process)

    def healthy(self) -> bool:
        """Every node says the cluster is ok, and every replica's link to its primary is up."""
        for node in self.nodes:
            with node.client() as client:
                if client.execute_command("CLUSTER INFO")["cluster_state"] != "ok":
                    return False
                if (
                    node.role() == "slave"
                    and client.info("replication")["master_link_status"] != "up"
                ):
                    return False
        return True

    def primaries(self) -> list[Node]:
        return [node for node in self.nodes if node.role() == "master"]

    def replicas(self) -> list[Node]:
        return [node for node in self.nodes if node.role() == "slave"]

    def fail_over(self, replica: Node) -> None:
        """Promote a replica with CLUSTER FAILOVER (its primary hands over once the replica has
        caught up, as an operator does for maintenance); returns when it is a primary and the
        cluster is ok again."""
        with replica.client() as client:
            client.execute_command("CLUSTER FAILOVER")
        _wait(lambda: replica.role() == "master", f"{replica.address} to become a primary")
        _wait(self.healthy, "the cluster to be ok after the failover")

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(ProcessLookupError):
                node.process.kill()
        for node in self.nodes:
            node.process.wait(10)


def _answers(node: Node) -> bool:
    try:
        with node.client() as client:
            return bool(client.ping())
    except (redis.exceptions.ConnectionError, OSError):
        return False


def _known(node: Node) -> int:
    with node.client() as client:
        return len(client.execute_command("CLUSTER NODES"))  # parsed: one entry per node


def _wait(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {READY_TIMEOUT_S}s for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def local_cluster(
    directory: Path, masters: int = 3, replicas_per_master: int = 1
) -> Iterator[LocalCluster]:
    cluster = LocalCluster(directory, masters, replicas_per_master)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
