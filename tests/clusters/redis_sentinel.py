"""Redis for those who choose it, highly available: a master, a replica and three sentinels
on 127.0.0.1, started by the test (persistence off, as tests/resilience's Redis)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from gigco.processes import free_port
from tests.harness.polling import wait_for

MASTER = "gigco"


@dataclass
class SentinelSet:
    """The master (``ports[0]`` at first), its replica and three sentinels."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gigco-sentinel-")))
    redis_ports: list[int] = field(default_factory=lambda: [free_port(), free_port()])
    sentinel_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _spawn(self, port: int, argv: list[str]) -> None:
        with (self.root / f"{port}.log").open("ab") as out:
            self.procs[port] = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start(self) -> None:
        """Master, replica (in sync), then the sentinels (quorum 2, down after 1 s)."""
        binary = shutil.which("redis-server") or "redis-server"
        master, replica = self.redis_ports
        for port in self.redis_ports:
            extra = ["--replicaof", "127.0.0.1", str(master)] if port == replica else []
            self._spawn(port, [
                binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.root), "--dbfilename", f"{port}.rdb",
                *extra,
            ])  # fmt: skip
        wait_for(
            lambda: self.client(replica).info("replication").get("master_link_status") == "up",
            timeout=30,
            every=0.1,
            what="the replica in sync",
        )
        for port in self.sentinel_ports:
            conf = self.root / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.root}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
            )
            self._spawn(port, [binary, str(conf), "--sentinel"])
        wait_for(
            lambda: all(self.sees_all(port) for port in self.sentinel_ports),
            timeout=30,
            every=0.2,
            what="every sentinel to know the replica and the other two",
        )

    def client(self, port: int) -> redis.Redis:
        """A client of the server on ``port``."""
        return redis.Redis(port=port, host="127.0.0.1", socket_timeout=2)

    def sees_all(self, port: int) -> bool:
        """Whether the sentinel on ``port`` knows the replica and both other sentinels."""
        with contextlib.suppress(redis.RedisError):
            info = self.client(port).sentinel_master(MASTER)
            return int(info["num-slaves"]) == 1 and int(info["num-other-sentinels"]) == 2
        return False

    def master_port(self) -> int | None:
        """The master's port as the first live sentinel says."""
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError):
                return int(self.client(port).sentinel_get_master_addr_by_name(MASTER)[1])
        return None

    def url(self, db: int = 1) -> str:
        """kombu's URL over the three sentinels."""
        return ";".join(f"sentinel://127.0.0.1:{p}/{db}" for p in self.sentinel_ports)

    def kill(self, port: int) -> float:
        """SIGKILL the server on ``port``; when it was sent."""
        killed_at = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[port].pid, signal.SIGKILL)
        self.procs[port].wait(timeout=10)
        return killed_at

    def destroy(self) -> None:
        """Kill everything and delete the files."""
        for port, proc in self.procs.items():
            if proc.poll() is None:
                self.kill(port)
        shutil.rmtree(self.root, ignore_errors=True)
