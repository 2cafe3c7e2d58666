"""The production API process for tests: gunicorn on a free port, stopped with its group."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.support import wait_for


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(base_url: str) -> bool:
    """True when ``GET /readyz`` answers 200 with status ok: the API can serve (a worker and
    beat may not be running yet; /healthz waits for them)."""
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:
            return response.status == 200 and json.load(response).get("status") == "ok"
    except (OSError, ValueError):
        return False


# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl, one path for every
# gunicorn of the user: concurrent test servers would fight over it.
NO_CONTROL_SOCKET = ["--no-control-socket"] if int(version("gunicorn").split(".")[0]) >= 27 else []


@contextmanager
def live_server(
    env: dict[str, str], log: Path, *, workers: int = 2, timeout: float = 30.0
) -> Iterator[str]:
    """Run ``gunicorn 'gigco.web:create_app()'`` with ``env``; yield its base URL once healthy.

    The server runs in its own process group, killed on exit; its output goes to ``log``.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                str(workers),
                "--graceful-timeout",
                "5",
                "--access-logfile",
                "-",
                *NO_CONTROL_SOCKET,
                "gigco.web:create_app()",
            ],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: process.poll() is not None or healthy(base_url),
            timeout=timeout,
            every=0.1,
            what=f"gunicorn to answer {base_url}/readyz",
        )
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}: {log.read_text()[-2000:]}")
        yield base_url
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Workers that outlived the arbiter (it was killed first) go with the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
