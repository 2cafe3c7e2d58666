"""What ``gigco dev`` keeps in its data directory: the lock that makes it the only instance
there, and the operator token it made up, so that a restart keeps the console signed in.

The lock is ``flock`` on ``dev.lock``, which holds the running instance's PID and URL. The
kernel releases it when the process ends, however it ends, so a file left by a killed
instance is stale and simply taken over; the file is never deleted (deleting a locked file
would let two instances lock two different files of one name).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import IO

LOCK_FILE = "dev.lock"
TOKEN_FILE = "operator-token"


class AlreadyRunning(Exception):
    """Another ``gigco dev`` holds the data directory; the message is one line naming it."""


def claim(data_dir: Path, *, url: str) -> IO[str]:
    """Lock ``data_dir`` for this process and record its PID and ``url``; AlreadyRunning when
    a live instance holds it. Keep the returned file open for as long as the instance runs."""
    import fcntl  # POSIX only: imported here so that the rest of ``gigco`` loads anywhere

    handle = os.fdopen(os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644), "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(handle.read())
        handle.close()
        raise AlreadyRunning(
            f"gigco dev is already running on {data_dir} ({holder}); stop it first, "
            "or give this one its own GIGCO_DATA_DIR"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "url": url}) + "\n")
    handle.flush()
    return handle


def _holder(text: str) -> str:
    try:
        found = json.loads(text)
        return f"pid {int(found['pid'])}, {found['url']}"
    except (ValueError, KeyError, TypeError):
        return "its PID is not recorded yet"


def operator_token(data_dir: Path) -> str:
    """The operator token kept in ``data_dir`` (readable by this user only), made on first use."""
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if len(token) >= 16:
        path.chmod(0o600)
        return token
    token = secrets.token_urlsafe(24)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token
