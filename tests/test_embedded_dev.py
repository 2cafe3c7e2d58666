"""``gigco dev`` for real: embedded SQLite and broker, a job priced over HTTP, a clean stop."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gigco import processes
from tests.harness.bodies import MISSING, job_body
from tests.harness.polling import wait_for
from tests.harness.servers import free_port

GIGCO = Path(sys.executable).with_name("gigco")
# A shell gives the job it runs in the foreground default SIGINT handling, but a runner
# that starts pytest in the background leaves SIGINT ignored, which exec preserves; this
# trampoline restores the default, so the child sees Ctrl-C as a terminal would send it.
WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def _processes() -> dict[int, tuple[int, int, str]]:
    """Every live process: pid → (parent pid, process group, state)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return found


def _descendants(pid: int) -> set[int]:
    procs = _processes()
    tree, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        children = [p for p, (ppid, _, _) in procs.items() if ppid == parent]
        tree.update(children)
        todo.extend(children)
    return tree


def _alive_in_groups(groups: set[int]) -> list[int]:
    return [p for p, (_, pgid, state) in _processes().items() if pgid in groups and state != "Z"]


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class DevServer:
    """A running ``gigco dev`` and where to reach it."""

    process: subprocess.Popen[bytes]
    base: str
    data_dir: Path
    log: Path

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """One HTTP request; returns (status, JSON body)."""
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {token}"} if token else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def healthy(self) -> bool:
        """True once /healthz answers 200."""
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            return self.call("GET", "/healthz")[0] == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def stop(self, sig: int, *, group: bool) -> int:
        """Send ``sig`` (to the whole process group, as a terminal's Ctrl-C does, or not)."""
        workers = _descendants(self.process.pid)
        assert any("celery" in _cmdline(p) for p in workers), "no Celery child running"
        groups = {self.process.pid} | {_processes().get(p, (0, 0, ""))[1] for p in workers}
        groups.discard(0)
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        wait_for(
            lambda: not _alive_in_groups(groups),
            timeout=20,
            every=0.1,
            what=f"the process groups {sorted(groups)} to be empty",
        )
        return code


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevServer]:
    """``gigco dev`` on a free port, on nothing but its data directory; killed if left over."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIGCO_")}
    env |= {"GIGCO_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    log = tmp_path / "dev.log"
    process = processes.start(
        [sys.executable, "-c", WITH_DEFAULT_SIGINT, str(GIGCO), "dev", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        log=log,
    )
    server = DevServer(process, f"http://127.0.0.1:{port}", tmp_path / "data", log)
    groups = {process.pid}
    try:
        wait_for(server.healthy, timeout=60, every=0.2, what="gigco dev to answer /healthz")
        groups |= {_processes().get(p, (0, 0, ""))[1] for p in _descendants(process.pid)}
        yield server
    finally:
        for pgid in groups - {0}:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout=10)


def test_gigco_dev_runs_the_embedded_stack_and_stops_cleanly_on_ctrl_c(dev: DevServer) -> None:
    banner = dev.log.read_text()
    assert "embedded SQLite" in banner and "sqla+sqlite:///" in banner
    operator = re.search(r"operator token (\S+)", banner)
    assert operator is not None, banner
    assert dev.call("GET", "/v1/me", token=operator.group(1)) == (200, {"role": "operator"})

    status, consumer = dev.call("POST", "/v1/consumers", {"name": "Ann", "email": "a@example.com"})
    assert status == 201, consumer
    job = job_body(description=MISSING, location={"lat": 52.5, "lng": 13.4}, estimated_hours=2.5)
    status, posted = dev.call("POST", "/v1/jobs", job, consumer["token"])
    assert status == 201, posted

    def offered() -> dict[str, Any] | None:
        status, body = dev.call("GET", f"/v1/jobs/{posted['id']}", token=consumer["token"])
        assert status == 200, body
        return body if body["status"] == "offered" else None

    job = wait_for(offered, timeout=30, every=0.2, what="the job to be offered")
    # plumbing is 9000 ¢/h: 2.5 h → 22500, fee 10 % → 2250
    assert (job["subtotal_cents"], job["fee_cents"], job["price_cents"]) == (22500, 2250, 24750)
    # The steps ran through the embedded broker, on the embedded database.
    assert {"gigco.db", "broker.db"} <= {p.name for p in dev.data_dir.iterdir()}

    assert dev.stop(signal.SIGINT, group=True) == 0


def test_gigco_dev_stops_its_worker_on_sigterm(dev: DevServer) -> None:
    assert dev.stop(signal.SIGTERM, group=False) == 0
