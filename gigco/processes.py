"""Child processes in their own process group: start one, stop the whole group, find a free port.

``gigco dev`` runs its worker this way, and so do the test harness and the benchmarks: a
signal to the group reaches the children a leader forks (prefork pool processes, gunicorn
workers), as a crash or a shutdown of the host would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def start(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new process group; output appended to ``log`` if given.

    ``env`` replaces the environment (None inherits ours).
    """
    if log is None:
        return subprocess.Popen(
            list(argv), env=None if env is None else dict(env), cwd=cwd, start_new_session=True
        )
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            env=None if env is None else dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to ``process``'s whole group; nothing if the group is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def reap(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for a signalled leader; SIGKILL its group past ``timeout`` s, and what outlived it."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        signal_group(process, signal.SIGKILL)
        process.wait()
    # Children that outlived their leader (it was killed first) go with the group.
    signal_group(process, signal.SIGKILL)
    return process.returncode


def stop(
    process: subprocess.Popen[bytes],
    *,
    timeout: float = 15.0,
    sig: int = signal.SIGTERM,
    leader_only: bool = False,
) -> int:
    """Stop a process started by ``start``: ``sig`` (SIGTERM), then SIGKILL after ``timeout`` s.

    ``sig`` goes to the whole group, or to the leader alone with ``leader_only`` (a warm
    shutdown in which the leader stops its own children). Whatever of the group outlived
    the leader is killed at the end. Returns the leader's exit code.
    """
    if process.poll() is None:
        if leader_only:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        else:
            signal_group(process, sig)
    return reap(process, timeout)


def stop_all(
    processes: Sequence[subprocess.Popen[bytes]],
    *,
    timeout: float = 15.0,
    leader_only: bool = False,
) -> None:
    """``stop`` several processes: SIGTERM them all at once, then reap each (SIGKILL a group
    whose leader lingers past ``timeout`` s)."""
    for process in processes:
        if process.poll() is None:
            if leader_only:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
            else:
                signal_group(process, signal.SIGTERM)
    for process in processes:
        reap(process, timeout)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
