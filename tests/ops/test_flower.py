"""Flower (``celery -A gigco.tasks flower``) runs on the project's config, behind basic auth."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gigco import processes
from tests.harness.http import Api
from tests.harness.polling import wait_for
from tests.harness.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "ops:flower-password-123"
CELERY_FLOWER = [sys.executable, "-m", "celery", "-A", "gigco.tasks", "flower"]


def _flower(env: dict[str, str], port: int, log: Path, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    return processes.start(
        [*CELERY_FLOWER, f"--port={port}", "--address=127.0.0.1"],
        cwd=cwd,
        env={**os.environ, **env},
        log=log,
    )


def _get(url: str, account: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if account:
        request.add_header("Authorization", "Basic " + base64.b64encode(account.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


@pytest.fixture(params=["repository root", "another directory"])
def flower(
    test_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A running Flower on the test broker, started from the repository root or elsewhere."""
    port = free_port()
    cwd = ROOT if request.param == "repository root" else tmp_path
    env = {**test_env, "GIGCO_FLOWER_BASIC_AUTH": ACCOUNT}
    process = _flower(env, port, tmp_path / "f.log", cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: process.poll() is not None or _get(url)[0] == 401,
            timeout=30,
            every=0.2,
            what="Flower to answer",
        )
        assert process.poll() is None, (tmp_path / "f.log").read_text()[-2000:]
        yield url
    finally:
        processes.stop(process, timeout=20)


def test_flower_asks_for_a_password_and_shows_our_tasks(flower: str, api: Api) -> None:
    assert _get(f"{flower}/")[0] == 401
    assert _get(f"{flower}/", "ops:wrong-password-000")[0] == 401
    status, page = _get(f"{flower}/", ACCOUNT)
    assert status == 200 and "Flower" in page

    # Flower switches task events on in the workers a few seconds after it starts (its
    # enable_events timer); jobs posted from then on show up with their tasks.
    consumer = api.consumer()
    posted: list[int] = []

    def priced() -> dict[str, Any] | None:
        job_id = api.post_job(consumer)["id"]
        api.wait_status(job_id, "offered")
        posted.append(job_id)
        status, body = _get(f"{flower}/api/tasks?taskname=gigco.tasks.steps.price_job", ACCOUNT)
        if status != 200:
            return None
        ours = {f"[{j}]" for j in posted}
        tasks = [
            t
            for t in json.loads(body).values()
            if t.get("args") in ours and t.get("state") == "SUCCESS"
        ]
        return tasks[0] if tasks else None

    task = wait_for(priced, timeout=30, every=0.5, what="Flower to see a price_job task")
    assert task["name"] == "gigco.tasks.steps.price_job"
    assert task["state"] == "SUCCESS"


@pytest.mark.parametrize("account", ["ops:short", ""])
@pytest.mark.parametrize("where", ["repository root", "another directory"])
def test_flower_refuses_to_start_without_a_password(
    test_env: dict[str, str], tmp_path: Path, account: str, where: str
) -> None:
    log = tmp_path / "f.log"
    env = {**test_env, "GIGCO_FLOWER_BASIC_AUTH": account}
    process = _flower(env, free_port(), log, ROOT if where == "repository root" else tmp_path)
    assert process.wait(timeout=60) != 0
    assert "set GIGCO_FLOWER_BASIC_AUTH=user:password" in log.read_text()
