"""Who gets into the console: the operator token, a hardened session cookie, CSRF on forms."""

from __future__ import annotations

import pytest
import redis
from flask import Flask

from gigco.config import Settings
from gigco.tasks import configure
from gigco.web import create_app
from tests.harness.console import Ops, csrf_from
from tests.harness.env import ADMIN_TOKEN, limits_redis_url


@pytest.mark.parametrize(
    "path", ["/ops/", "/ops/jobs?status=offered", "/ops/jobs/1", "/ops/system", "/ops/finance.csv"]
)
def test_every_page_sends_a_stranger_to_the_login_form(app: Flask, path: str) -> None:
    r = app.test_client().get(path)
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/ops/login?next=")
    login = app.test_client().get(r.headers["Location"])
    assert login.status_code == 200
    assert 'type="password"' in login.text


def test_a_stranger_cannot_post_an_action(app: Flask) -> None:
    client = app.test_client()
    token = csrf_from(client.get("/ops/login").text)  # a session, but not an operator's
    r = client.post("/ops/jobs/1/payment/retry", data={"csrf_token": token})
    assert r.status_code == 303
    assert r.headers["Location"] == "/ops/login"


def test_a_wrong_token_is_refused_and_signs_nobody_in(app: Flask) -> None:
    ops = Ops(app.test_client())
    r = ops.login(token=ADMIN_TOKEN + "x")
    assert r.status_code == 401
    assert "That token is not valid." in r.text
    assert ADMIN_TOKEN not in r.text
    assert ops.client.get("/ops/").status_code == 302
    r = ops.login(token="wrong-but-not-ascii-✓")
    assert r.status_code == 401


def test_the_right_token_opens_the_page_asked_for_with_a_hardened_cookie(app: Flask) -> None:
    ops = Ops(app.test_client())
    r = ops.login(next_="/ops/jobs?status=closed")
    assert r.status_code == 303
    assert r.headers["Location"] == "/ops/jobs?status=closed"
    (cookie,) = r.headers.getlist("Set-Cookie")
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "path", "samesite"} <= flags
    assert "SameSite=Lax" in cookie and "Path=/ops" in cookie
    assert ADMIN_TOKEN not in cookie and ADMIN_TOKEN not in r.headers["Location"]
    page = ops.page("/ops/jobs?status=closed")
    assert "Jobs" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_plain_http_dev_can_turn_the_secure_flag_off(app: Flask) -> None:
    app.config["SESSION_COOKIE_SECURE"] = False
    r = Ops(app.test_client()).login()
    assert r.status_code == 303
    assert "Secure" not in r.headers["Set-Cookie"]


@pytest.mark.parametrize(
    "target", ["https://evil.example/ops/", "//evil.example/ops", "/v1/jobs", "/ops\\@evil"]
)
def test_login_never_redirects_off_the_console(app: Flask, target: str) -> None:
    r = Ops(app.test_client()).login(next_=target)
    assert r.status_code == 303
    assert r.headers["Location"] == "/ops/"


def test_forms_without_the_sessions_csrf_token_are_refused(ops: Ops, app: Flask) -> None:
    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": "ünïcode"}):
        r = ops.client.post("/ops/logout", data=data)
        assert r.status_code == 400
        assert "security token" in r.text
    assert ops.page("/ops/").status_code == 200  # still signed in

    stranger = app.test_client()
    r = stranger.post("/ops/login", data={"token": ADMIN_TOKEN})
    assert r.status_code == 400
    assert stranger.get("/ops/").status_code == 302

    # A token from another browser session does not work in this one.
    other = Ops(app.test_client())
    other.login()
    foreign = csrf_from(other.page("/ops/").text)
    assert ops.client.post("/ops/logout", data={"csrf_token": foreign}).status_code == 400


def test_signing_out_ends_the_session(ops: Ops) -> None:
    r = ops.submit("/ops/", "/ops/logout")
    assert r.status_code == 303
    assert r.headers["Location"] == "/ops/login"
    assert "You are signed out." in ops.client.get("/ops/login").text
    assert ops.client.get("/ops/").status_code == 302


def test_a_new_operator_token_signs_old_sessions_out(app: Flask, ops: Ops) -> None:
    settings = app.config["GIGCO"]
    app.config["GIGCO"] = settings.replace(admin_token="a-brand-new-operator-token-42")
    assert ops.client.get("/ops/").status_code == 302


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/ops/jobs?status=nonsense", 400),
        ("/ops/jobs?after=abc", 400),
        ("/ops/jobs?after=0", 400),
        ("/ops/jobs?after=" + "9" * 40, 400),
        ("/ops/jobs?consumer=x", 400),
        ("/ops/jobs?created_from=yesterday", 400),
        ("/ops/jobs/find?id=%3Cb%3E", 400),
        ("/ops/jobs/find?id=" + "9" * 40, 400),
        ("/ops/jobs/" + "9" * 30, 404),
        ("/ops/jobs/2147483647", 404),
    ],
)
def test_bad_input_gets_an_html_error_page_not_a_crash(
    isolated_app: Flask, ops: Ops, path: str, code: int
) -> None:
    r = ops.client.get(path)
    assert r.status_code == code
    assert r.content_type.startswith("text/html")
    assert '<p class="error"' in r.text


def test_retrying_a_missing_job_says_so(isolated_app: Flask, ops: Ops) -> None:
    r = ops.submit("/ops/", "/ops/jobs/999999/payment/retry", reason="card replaced")
    assert r.status_code == 404
    assert "Job 999999 not found." in r.text


def test_a_form_posted_without_the_secure_cookie_over_http_says_why(app: Flask) -> None:
    # A browser drops a Secure cookie on plain HTTP: the login POST comes back without it.
    browser = app.test_client()
    assert browser.get("/ops/login").status_code == 200
    browser.delete_cookie("gigco_ops", path="/ops")
    r = browser.post("/ops/login", data={"token": ADMIN_TOKEN, "csrf_token": "from-the-page"})
    assert r.status_code == 400
    assert "GIGCO_OPS_SECURE_COOKIE=false" in r.text and "plain HTTP" in r.text
    # Over HTTPS the same loss is only a stale token.
    r = browser.post("/ops/login", data={"token": ADMIN_TOKEN}, base_url="https://localhost")
    assert r.status_code == 400 and "GIGCO_OPS_SECURE_COOKIE" not in r.text


def test_gigco_ops_secure_cookie_false_sends_a_plain_cookie(settings: Settings) -> None:
    from gigco.web import create_app

    plain = settings.replace(ops_secure_cookie=False)
    try:
        r = Ops(create_app(plain).test_client()).login()
        assert r.status_code == 303
        assert "Secure" not in r.headers["Set-Cookie"]
    finally:
        configure(settings)


def test_refused_logins_are_throttled_per_address_and_the_form_says_when(
    settings: Settings,
) -> None:
    redis.Redis.from_url(limits_redis_url()).flushdb()
    try:
        app = create_app(settings.replace(rate_limit_ops_logins="3/minute"))
    finally:
        configure(settings)
    guesser = Ops(app.test_client())
    guesser.client.environ_base["REMOTE_ADDR"] = "203.0.113.66"
    assert [guesser.login(token=f"guess-{n}").status_code for n in range(3)] == [401] * 3
    throttled = guesser.login(token="guess-3")
    assert throttled.status_code == 429
    assert "Too many refused logins from your address: try again in" in throttled.text
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert 'type="password"' in throttled.text  # the form, not a JSON error
    # Past the limit even the right token waits: guessing on cannot tell it apart.
    assert guesser.login().status_code == 429
    assert guesser.client.get("/ops/").status_code == 302
    # Another address signs in, and a right token is not counted against its address.
    for _ in range(4):
        operator = Ops(app.test_client())
        operator.client.environ_base["REMOTE_ADDR"] = "198.51.100.5"
        assert operator.login().status_code == 303
