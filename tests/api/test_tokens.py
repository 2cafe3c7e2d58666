"""Lost tokens: ``POST /v1/tokens/rotate`` and ``gigco token issue`` revoke the old token at
once, in every gunicorn process (there is no per-process principal cache to outlive it)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from gigco.seed import CITIES, SPREAD_KM
from tests.api.helpers import assert_error
from tests.harness.bodies import consumer_body, worker_body
from tests.harness.env import ADMIN_TOKEN
from tests.harness.http import auth
from tests.harness.servers import live_server

GIGCO = Path(sys.executable).parent / "gigco"
PROCESSES = 3
ROUNDS = 8 * PROCESSES  # enough requests that every process answers several


@pytest.fixture(scope="module")
def base_url(test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API under gunicorn with several processes, on the test database."""
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with live_server(test_env, log, workers=PROCESSES) as url:
        yield url


def gigco(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``gigco`` command on the test database."""
    return subprocess.run(
        [str(GIGCO), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Http:
    """``requests`` against the live server, each request on a fresh connection (so
    gunicorn's processes take turns answering)."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return self.call("POST", path, **kwargs)

    def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: object
    ) -> requests.Response:
        headers = {**(headers or {}), "Connection": "close"}
        return requests.request(method, self.base_url + path, headers=headers, timeout=20, **kwargs)


def statuses(http: Http, token: str) -> set[int]:
    """The statuses of ``ROUNDS`` requests to /v1/me with ``token``."""
    return {http.get("/v1/me", headers=auth(token)).status_code for _ in range(ROUNDS)}


@pytest.mark.parametrize("role", ["consumer", "worker"])
def test_rotate_refuses_the_old_token_at_once_in_every_process(
    base_url: str, committed: None, role: str
) -> None:
    http = Http(base_url)
    body = consumer_body() if role == "consumer" else worker_body()
    account = http.post(f"/v1/{role}s", json=body).json()
    old = account["token"]
    assert statuses(http, old) == {200}  # every process has seen the token

    r = http.post("/v1/tokens/rotate", headers=auth(old))
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert (rotated["role"], rotated["id"]) == (role, account["id"])
    new = rotated["token"]
    assert new != old and new.startswith("gc_")

    assert statuses(http, old) == {401}
    assert statuses(http, new) == {200}
    me = http.get("/v1/me", headers=auth(new)).json()
    assert (me["role"], me["id"]) == (role, account["id"])
    # The old token cannot rotate either.
    assert http.post("/v1/tokens/rotate", headers=auth(old)).status_code == 401


def test_the_operator_token_is_not_rotated_here(app: Flask) -> None:
    r = app.test_client().post("/v1/tokens/rotate", headers=auth(ADMIN_TOKEN))
    assert assert_error(r, 403)["message"] == "Only a consumer or worker may do that."
    assert_error(app.test_client().post("/v1/tokens/rotate"), 401)


def test_gigco_token_issue_revokes_the_old_token_and_prints_a_new_one(
    base_url: str, test_env: dict[str, str], committed: None
) -> None:
    http = Http(base_url)
    body = worker_body()
    worker = http.post("/v1/workers", json=body).json()
    assert statuses(http, worker["token"]) == {200}

    result = gigco(test_env, "token", "issue", "--email", body["email"].upper())
    assert result.returncode == 0, result.stderr
    new = result.stdout.strip()
    assert new.startswith("gc_") and "\n" not in new
    assert f"worker {worker['id']}" in result.stderr

    assert statuses(http, worker["token"]) == {401}
    assert statuses(http, new) == {200}

    missing = gigco(test_env, "token", "issue", "--email", "nobody@example.com")
    assert missing.returncode == 1
    assert "No account has the email nobody@example.com" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_gigco_seed_signs_up_accounts_around_the_city_with_working_tokens(
    app: Flask, test_env: dict[str, str], committed: None
) -> None:
    result = gigco(test_env, "seed", "--city", "paris", "--workers", "4", "--consumers", "2")
    assert result.returncode == 0, result.stderr
    header, *rows = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert header == ["role", "id", "email", "lat", "lng", "token"]
    assert sorted(row[0] for row in rows) == ["consumer"] * 2 + ["worker"] * 4
    centre = CITIES["paris"]
    client = app.test_client()
    for role, account_id, email, lat, lng, token in rows:
        me = client.get("/v1/me", headers=auth(token)).get_json()
        assert (me["role"], me["id"], me["email"]) == (role, int(account_id), email)
        km = math.dist(
            (float(lat) * 111.32, float(lng) * 111.32 * math.cos(math.radians(centre[0]))),
            (centre[0] * 111.32, centre[1] * 111.32 * math.cos(math.radians(centre[0]))),
        )
        assert km <= SPREAD_KM + 0.1
        if role == "worker":
            assert me["location"] == {"lat": float(lat), "lng": float(lng)}
            assert me["available"] is True and me["skills"]
    # A second run adds accounts rather than failing on the same emails.
    again = gigco(test_env, "seed", "--city", "paris", "--workers", "1", "--consumers", "0")
    assert again.returncode == 0, again.stderr
    unknown = gigco(test_env, "seed", "--city", "atlantis")
    assert unknown.returncode == 2 and "atlantis" in unknown.stderr
