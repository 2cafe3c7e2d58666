"""A three-node RabbitMQ cluster on 127.0.0.1, started by the test beside the machine's own.

Each node has its own name, AMQP and distribution ports, data and log directories, and no
plugins; all share one Erlang cookie (in a HOME of their own) and the machine's epmd. The
machine's default node (``rabbit@localhost`` on 5672) is never touched: the nodes read no
file under /etc/rabbitmq.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from gigco.processes import free_port
from tests.harness.polling import wait_for

SBIN = Path("/usr/lib/rabbitmq/bin")


def rabbitmq_server() -> Path | None:
    """The rabbitmq-server script itself (not Debian's wrapper, which switches user)."""
    for candidate in (SBIN / "rabbitmq-server", shutil.which("rabbitmq-server")):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def cannot_run_cluster() -> str | None:
    """Why this machine cannot run a RabbitMQ cluster of the test's own, or None."""
    if rabbitmq_server() is None or shutil.which("rabbitmqctl") is None:
        return "rabbitmq-server/rabbitmqctl not found (install rabbitmq-server; .ci/run does)"
    return None


@dataclass
class Node:
    """One RabbitMQ node of the cluster."""

    name: str  # node name, e.g. gigco-a-1a2b@localhost
    root: Path
    amqp_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url_part(self) -> str:
        """host:port for an AMQP URL."""
        return f"127.0.0.1:{self.amqp_port}"

    def env(self, home: Path) -> dict[str, str]:
        """The environment the node and rabbitmqctl run with."""
        base = self.root / self.name.split("@")[0]
        return {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.root / "advanced.config"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }


@dataclass
class RabbitCluster:
    """Three nodes joined into one cluster; ``url(vhost)`` names all three (kombu failover)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gigco-rmq-")))
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.nodes = [Node(f"gigco-{x}-{tag}@localhost", self.root) for x in "abc"]
        (self.root / "rabbitmq-env.conf").write_text("")
        (self.root / "rabbitmq.conf").write_text("loopback_users = none\n")
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "advanced.config").write_text("[].\n")
        cookie = self.root / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)

    def ctl(self, node: Node, *args: str, timeout: float = 60) -> str:
        """``rabbitmqctl -n node args``; its output."""
        result = subprocess.run(
            [str(SBIN / "rabbitmqctl"), "-q", "-n", node.name, *args],
            env=node.env(self.root), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stdout}{result.stderr}")
        return result.stdout

    def start_node(self, node: Node, *, wait: bool = True) -> None:
        """Start ``node`` in its own process group and (unless not ``wait``) wait until it
        runs."""
        server = rabbitmq_server()
        assert server is not None
        log = self.root / f"{node.name.split('@')[0]}.out"
        with log.open("ab") as out:
            node.process = subprocess.Popen(
                [str(server)], env=node.env(self.root), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        if wait:
            self.wait_started(node)

    def wait_started(self, node: Node) -> None:
        """Wait until ``node`` has booted."""
        wait_for(
            lambda: self._started(node), timeout=90, every=0.5, what=f"node {node.name} to boot"
        )

    def _started(self, node: Node) -> bool:
        assert node.process is not None
        if node.process.poll() is not None:
            out = (self.root / f"{node.name.split('@')[0]}.out").read_text(errors="replace")
            raise RuntimeError(f"{node.name} exited: {out[-2000:]}")
        try:
            self.ctl(node, "await_startup", "--timeout", "30", timeout=40)
        except RuntimeError:
            return False  # not registered with epmd yet
        return True

    def start(self) -> None:
        """Start the three nodes and join b and c to a."""
        for node in self.nodes:  # they boot side by side
            self.start_node(node, wait=False)
        for node in self.nodes:
            self.wait_started(node)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
        wait_for(
            lambda: all(n.name in self.ctl(first, "cluster_status") for n in self.nodes),
            timeout=60,
            every=0.2,
            what="three nodes in the cluster",
        )

    def kill(self, node: Node) -> float:
        """SIGKILL ``node`` (its whole process group: the Erlang VM dies as in a crash)."""
        assert node.process is not None
        killed_at = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait(timeout=30)
        return killed_at

    def running(self) -> list[Node]:
        """The nodes whose process runs."""
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def add_vhost(self, vhost: str) -> None:
        """Create ``vhost`` with full permissions for guest."""
        node = self.running()[0]
        self.ctl(node, "add_vhost", vhost)
        self.ctl(node, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def url(self, vhost: str, nodes: list[Node] | None = None) -> str:
        """kombu's failover URL over ``nodes`` (all three by default)."""
        return ";".join(f"amqp://guest:guest@{n.url_part}/{vhost}" for n in (nodes or self.nodes))

    def queues(self, vhost: str) -> dict[str, dict[str, str]]:
        """Each queue's leader, members and counts, as any running node reports them."""
        out = self.ctl(
            self.running()[0], "list_queues", "-p", vhost, "--no-table-headers",
            "name", "leader", "members", "messages_ready", "messages_unacknowledged",
        )  # fmt: skip
        found = {}
        for line in out.splitlines():
            name, leader, members, ready, unacked = line.split("\t")
            found[name] = {"leader": leader, "members": members, "ready": ready, "unacked": unacked}
        return found

    def destroy(self) -> None:
        """Kill every node and delete the files."""
        for node in self.running():
            self.kill(node)
        shutil.rmtree(self.root, ignore_errors=True)
