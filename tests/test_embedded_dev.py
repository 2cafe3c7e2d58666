"""``gigco dev`` for real: embedded SQLite and broker, a job priced over HTTP, a clean stop."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
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


def start_dev(
    tmp_path: Path, *args: str, data_dir: Path | None = None, port: int | None = None, **env: str
) -> DevServer:
    """``gigco dev ARGS`` on a free port (or ``port``), on nothing but its data directory."""
    data_dir = data_dir or tmp_path / "data"
    port = port or free_port()
    log = tmp_path / f"dev-{port}-{len(list(tmp_path.glob('dev-*.log')))}.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GIGCO_")}
    environ |= {"GIGCO_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", **env}
    argv = [sys.executable, "-c", WITH_DEFAULT_SIGINT, str(GIGCO), "dev", "--port", str(port)]
    process = processes.start([*argv, *args], cwd=tmp_path, env=environ, log=log)
    return DevServer(process, f"http://127.0.0.1:{port}", data_dir, log)


def kill(server: DevServer) -> None:
    """SIGKILL ``server`` and every process group it started, as a crash would."""
    groups = {server.process.pid}
    groups |= {_processes().get(p, (0, 0, ""))[1] for p in _descendants(server.process.pid)}
    for pgid in groups - {0}:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    server.process.wait(timeout=10)
    wait_for(lambda: not _alive_in_groups(groups), timeout=20, every=0.1, what="the groups to end")


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., DevServer]]:
    """Start ``gigco dev`` (``start_dev``'s arguments) and wait until it answers /healthz;
    whatever is left running at the end is killed."""
    started: list[DevServer] = []

    def run(*args: str, **options: Any) -> DevServer:
        server = start_dev(tmp_path, *args, **options)
        started.append(server)
        wait_for(server.healthy, timeout=60, every=0.2, what="gigco dev to answer /healthz")
        return server

    try:
        yield run
    finally:
        for server in started:
            kill(server)


@pytest.fixture
def dev(launch: Callable[..., DevServer]) -> DevServer:
    """``gigco dev`` on a free port, on nothing but its data directory."""
    return launch()


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


def refused(data_dir: Path, *args: str) -> str:
    """Run ``gigco dev ARGS`` on ``data_dir``, which must fail at once; its one line."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GIGCO_")}
    result = subprocess.run(
        [str(GIGCO), "dev", *args],
        env=environ | {"GIGCO_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == "", result.stdout  # no banner, no operator token
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_one_gigco_dev_per_data_directory_and_a_busy_port_fails_before_printing(
    dev: DevServer, tmp_path: Path
) -> None:
    status, consumer = dev.call("POST", "/v1/consumers", {"name": "Ann", "email": "a@example.com"})
    assert status == 201, consumer
    running = f"(pid {dev.process.pid}, {dev.base})"

    second = refused(dev.data_dir, "--port", str(free_port()))
    assert second == (
        f"Error: gigco dev is already running on {dev.data_dir} {running}; stop it first, "
        "or give this one its own GIGCO_DATA_DIR"
    )
    assert refused(dev.data_dir, "--reset", "--port", str(free_port())) == second
    # Nothing was deleted under the running instance, which still serves the same data.
    assert {"gigco.db", "broker.db"} <= {p.name for p in dev.data_dir.iterdir()}
    assert dev.call("GET", "/v1/me", token=consumer["token"])[0] == 200

    # Another data directory on the running instance's port: one line, and no token made.
    port = dev.base.rsplit(":", 1)[1]
    other = tmp_path / "other"
    assert refused(other, "--port", port) == (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "pick another port with --port"
    )
    assert not (other / "operator-token").exists()


def _sign_in_to_ops(base: str, token: str) -> int:
    """Sign in to the console as a browser would; the status of /ops/ with the new session."""
    page = urllib.request.urlopen(base + "/ops/login", timeout=10)
    cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())
    assert csrf, "no CSRF field on the login form"
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    form = urllib.parse.urlencode({"csrf_token": csrf[1], "token": token, "next": "/ops/"})
    conn.request(
        "POST",
        "/ops/login",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    answer = conn.getresponse()
    answer.read()
    if answer.status != 303:
        return answer.status
    session = answer.headers["Set-Cookie"].split(";", 1)[0]
    conn.request("GET", "/ops/", headers={"Cookie": session})
    console = conn.getresponse()
    console.read()
    return console.status


def _operator_token(server: DevServer) -> str:
    found = re.search(r"operator token (\S+)", server.log.read_text())
    assert found is not None, server.log.read_text()
    return found[1]


def test_the_operator_token_survives_a_restart_and_reset_makes_a_new_one(
    launch: Callable[..., DevServer],
) -> None:
    first = launch()
    token = _operator_token(first)
    kept = first.data_dir / "operator-token"
    assert kept.read_text().strip() == token
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert _sign_in_to_ops(first.base, token) == 200

    # Killed, not stopped: its lock file is left behind, naming a process that is gone.
    kill(first)
    assert str(first.process.pid) in (first.data_dir / "dev.lock").read_text()
    again = launch(port=int(first.base.rsplit(":", 1)[1]))
    assert _operator_token(again) == token
    assert _sign_in_to_ops(again.base, token) == 200

    kill(again)
    fresh = launch("--reset")
    assert _operator_token(fresh) not in (token, "")
    assert _sign_in_to_ops(fresh.base, token) == 401


def _heartbeat(data_dir: Path, kind: str) -> str | None:
    """From the embedded database's heartbeats: when beat last sent a sweep (``beat``), or a
    worker last finished a task (``worker``)."""
    with contextlib.closing(sqlite3.connect(data_dir / "gigco.db", timeout=5)) as db:
        row = db.execute("SELECT max(beat_at) FROM heartbeats WHERE kind = ?", (kind,)).fetchone()
    return None if row is None else row[0]


def test_an_idle_gigco_dev_writes_no_line_while_it_sweeps(
    launch: Callable[..., DevServer],
) -> None:
    server = launch(GIGCO_SWEEP_INTERVAL_SECONDS="1")
    # Started up: the worker has finished a sweep (nothing left of its start to log).
    wait_for(
        lambda: _heartbeat(server.data_dir, "worker"), timeout=30, what="the worker's first sweep"
    )
    ticks = [_heartbeat(server.data_dir, "beat")]

    def swept(n: int) -> bool:
        last = _heartbeat(server.data_dir, "beat")
        if last not in ticks:
            ticks.append(last)
        return len(ticks) > n

    wait_for(lambda: swept(1), timeout=30, every=0.1, what="beat's next sweep")
    before = server.log.read_text().splitlines()
    wait_for(lambda: swept(5), timeout=30, every=0.1, what="four more sweeps")
    during = server.log.read_text().splitlines()[len(before) :]

    # Four sweeps, each of which used to write three INFO lines, and not one line now.
    assert during == []
    assert server.process.poll() is None
