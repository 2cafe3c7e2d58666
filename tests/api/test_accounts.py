"""Sign-up, tokens, ``/v1/me``, a worker's own profile and public worker profiles."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco.models import ApiToken
from gigco.testing import GigCo
from tests.api.helpers import RowCounts, assert_error, send_json
from tests.harness.bodies import consumer_body, worker_body
from tests.harness.http import Api
from tests.harness.kit import KIT_SETTINGS, OPERATOR, failed_payment_on_clock, refused
from tests.harness.polling import race

WORKER = {
    "name": "Wanda",
    "email": "wanda@example.com",
    "skills": ["plumbing", "electrical"],
    "location": {"lat": 52.52, "lng": 13.405},
    "service_radius_km": 25,
}
CONSUMER = {"name": "Ann", "email": "ann@example.com"}
PUBLIC_PROFILE = {"id", "name", "skills", "rating", "review_count", "completed_jobs"}


@pytest.fixture
def gigco_settings() -> dict[str, str]:
    """The ``gigco`` kit's GigCo: the run's operator token and payment budget."""
    return KIT_SETTINGS


def _tokens_of(sessions: sessionmaker[Session], **owner: int) -> list[ApiToken]:
    with sessions() as s:
        return list(s.scalars(sa.select(ApiToken).filter_by(**owner)))


def _assert_stored_as_hash(sessions: sessionmaker[Session], token: str, **owner: int) -> None:
    (row,) = _tokens_of(sessions, **owner)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(v) for v in vars(row).values()}


@pytest.mark.parametrize(
    ("path", "body", "role"),
    [("/v1/consumers", CONSUMER, "consumer"), ("/v1/workers", WORKER, "worker")],
)
def test_sign_up_returns_a_token_once_and_stores_only_its_hash(
    api: Api, sessions: sessionmaker[Session], path: str, body: dict[str, Any], role: str
) -> None:
    r = api.client.post(path, json=body)
    assert r.status_code == 201, r.json
    created = r.json
    token = created["token"]
    assert token.startswith("gc_") and len(token) >= 40
    assert (created["role"], created["name"], created["email"]) == (
        role,
        body["name"],
        body["email"],
    )
    _assert_stored_as_hash(sessions, token, **{f"{role}_id": created["id"]})

    me = api.client.get("/v1/me", headers=api.auth(token))
    assert me.status_code == 200, me.json
    assert me.json["role"] == role and me.json["id"] == created["id"]
    assert "token" not in me.json


def test_a_consumer_signs_up_with_a_payment_method_and_sees_it_on_me(api: Api) -> None:
    consumer = api.consumer(payment_method="pm_card_chargeDeclined")
    me = api.client.get("/v1/me", headers=consumer["headers"]).json
    assert me == {
        "role": "consumer",
        "id": consumer["id"],
        "name": consumer["name"],
        "email": consumer["email"],
        "payment_method": "pm_card_chargeDeclined",
        "rating": None,
        "review_count": 0,
        "completed_jobs": 0,
        "created_at": consumer["created_at"],
    }
    assert api.consumer()["payment_method"] == "pm_card_visa"


def test_a_worker_sees_their_whole_profile_on_me(api: Api) -> None:
    worker = api.worker(available=False, skills=["plumbing", "cleaning"])
    me = api.client.get("/v1/me", headers=worker["headers"]).json
    assert me["role"] == "worker"
    assert me["skills"] == ["cleaning", "plumbing"]
    assert me["location"] == {"lat": 52.52, "lng": 13.405}
    assert (me["service_radius_km"], me["available"]) == (25, False)
    assert (me["rating"], me["review_count"], me["completed_jobs"]) == (None, 0, 0)


def test_the_operator_is_an_operator_on_me(api: Api) -> None:
    r = api.client.get("/v1/me", headers=api.admin)
    assert r.status_code == 200
    assert r.json == {"role": "operator"}


@pytest.mark.parametrize("path", ["/v1/consumers", "/v1/workers"])
def test_a_second_sign_up_with_the_same_email_is_a_conflict_and_writes_nothing(
    api: Api, row_counts: RowCounts, path: str
) -> None:
    body = CONSUMER if path == "/v1/consumers" else WORKER
    assert api.client.post(path, json=body).status_code == 201
    before = row_counts()
    again = {**body, "name": "Someone else", "email": body["email"].upper()}
    error = assert_error(api.client.post(path, json=again), 409, "email")
    assert "already" in error["message"]
    assert row_counts() == before


def test_the_same_email_may_be_a_consumer_and_a_worker(api: Api) -> None:
    assert api.client.post("/v1/consumers", json=CONSUMER).status_code == 201
    assert (
        api.client.post("/v1/workers", json={**WORKER, "email": CONSUMER["email"]}).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"payment_method": "pm_card_bogus"}, "payment_method"),
        ({"role": "operator"}, "role"),
    ],
    ids=["bad-email", "empty-email", "empty-name", "long-name", "unknown-pm", "unknown-field"],
)
def test_consumer_sign_up_refuses_bad_fields(
    api: Api, row_counts: RowCounts, change: dict[str, Any], field: str
) -> None:
    before = row_counts()
    assert_error(send_json(api.client, "POST", "/v1/consumers", {**CONSUMER, **change}), 422, field)
    assert row_counts() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"skills": ["plumbing", "astrology"]}, "skills"),
        ({"skills": []}, "skills"),
        ({"skills": None}, "skills"),
        ({"email": "wanda@"}, "email"),
        ({"service_radius_km": -1}, "service_radius_km"),
        ({"service_radius_km": "far"}, "service_radius_km"),
        ({"service_radius_km": 1000}, "service_radius_km"),
        ({"location": {"lat": 95, "lng": 13.4}}, "location.lat"),
        ({"location": {"lat": 52.5, "lng": -180.5}}, "location.lng"),
        ({"location": {"lat": 52.5}}, "location.lng"),
        ({"location": [52.5, 13.4]}, "location"),
        ({"available": "maybe"}, "available"),
        ({"name": ""}, "name"),
        ({"rating": 5}, "rating"),
    ],
    ids=[
        "unknown-skill",
        "no-skills",
        "null-skills",
        "bad-email",
        "negative-radius",
        "text-radius",
        "radius-past-the-cap",
        "lat-out-of-range",
        "lng-out-of-range",
        "lng-missing",
        "location-not-object",
        "available-not-bool",
        "empty-name",
        "unknown-field",
    ],
)
def test_worker_sign_up_refuses_bad_fields(
    api: Api, row_counts: RowCounts, change: dict[str, Any], field: str
) -> None:
    before = row_counts()
    body = assert_error(
        send_json(api.client, "POST", "/v1/workers", {**WORKER, **change}), 422, field
    )
    if change.get("skills"):
        assert body["errors"]["skills"] == [
            "Unknown category: astrology; choose one of: "
            "cleaning, electrical, gardening, handyman, moving, plumbing."
        ]
    assert row_counts() == before


def test_a_worker_changes_their_own_profile(api: Api) -> None:
    worker = api.worker()
    changes = {
        "available": False,
        "location": {"lat": 48.137, "lng": 11.575},
        "service_radius_km": 5.5,
        "skills": ["gardening", "cleaning"],
    }
    r = api.client.patch("/v1/workers/me", json=changes, headers=worker["headers"])
    assert r.status_code == 200, r.json
    me = api.client.get("/v1/me", headers=worker["headers"]).json
    assert {k: me[k] for k in changes} == {**changes, "skills": ["cleaning", "gardening"]}
    assert r.json == me

    r = api.client.patch("/v1/workers/me", json={"available": True}, headers=worker["headers"])
    assert r.status_code == 200
    assert (r.json["available"], r.json["service_radius_km"]) == (True, 5.5)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"skills": ["astrology"]}, "skills"),
        ({"skills": []}, "skills"),
        ({"service_radius_km": -0.1}, "service_radius_km"),
        ({"service_radius_km": 100.01}, "service_radius_km"),
        ({"location": {"lat": -91, "lng": 0}}, "location.lat"),
        ({"email": "new@example.com"}, "email"),
    ],
    ids=[
        "unknown-skill",
        "no-skills",
        "negative-radius",
        "radius-past-the-cap",
        "bad-lat",
        "email-not-changeable",
    ],
)
def test_a_bad_profile_change_is_refused_and_changes_nothing(
    api: Api, change: dict[str, Any], field: str
) -> None:
    worker = api.worker()
    before = api.client.get("/v1/me", headers=worker["headers"]).json
    r = api.client.patch(
        "/v1/workers/me", json={"available": False, **change}, headers=worker["headers"]
    )
    assert_error(r, 422, field)
    assert api.client.get("/v1/me", headers=worker["headers"]).json == before


def test_a_service_radius_is_at_most_100_km(api: Api, row_counts: RowCounts) -> None:
    """A gig worker travels to each job: 100 km is the most anyone may serve, and the
    refusal says so."""
    before = row_counts()
    r = send_json(api.client, "POST", "/v1/workers", {**WORKER, "service_radius_km": 1000})
    body = assert_error(r, 422, "service_radius_km")
    assert body["errors"]["service_radius_km"] == [
        "Must be 0 to 100 km: a worker travels to each job."
    ]
    assert row_counts() == before
    worker = api.worker(service_radius_km=100)
    r = api.client.patch(
        "/v1/workers/me", json={"service_radius_km": 5000}, headers=worker["headers"]
    )
    assert assert_error(r, 422, "service_radius_km")["errors"] == body["errors"]
    me = api.client.get("/v1/me", headers=worker["headers"]).json
    assert me["service_radius_km"] == 100


def test_only_a_worker_may_change_a_worker_profile(api: Api) -> None:
    consumer = api.consumer()
    for headers in (consumer["headers"], api.admin):
        r = api.client.patch("/v1/workers/me", json={"available": False}, headers=headers)
        assert_error(r, 403)
    assert_error(api.client.patch("/v1/workers/me", json={"available": False}), 401)


def test_a_public_worker_profile_shows_no_private_details(api: Api) -> None:
    worker = api.worker(skills=["moving", "handyman"])
    consumer = api.consumer()
    r = api.client.get(f"/v1/workers/{worker['id']}", headers=consumer["headers"])
    assert r.status_code == 200, r.json
    assert r.json == {
        "id": worker["id"],
        "name": worker["name"],
        "skills": ["handyman", "moving"],
        "rating": None,
        "review_count": 0,
        "completed_jobs": 0,
    }
    assert set(r.json) == PUBLIC_PROFILE


def test_an_unknown_worker_is_not_found(api: Api) -> None:
    consumer = api.consumer()
    error = assert_error(api.client.get("/v1/workers/424242", headers=consumer["headers"]), 404)
    assert "424242" in error["message"]
    assert_error(api.client.get("/v1/workers/1"), 401)


def test_emails_are_unique_whatever_their_case_even_when_racing(api: Api, app) -> None:  # type: ignore[no-untyped-def]
    clients = [app.test_client() for _ in range(6)]
    codes = race(
        6,
        lambda i: (
            clients[i]
            .post(
                "/v1/consumers",
                json={"name": "Ann", "email": "Ann@Example.com" if i % 2 else "ann@example.COM"},
            )
            .status_code
        ),
    )
    assert sorted(codes) == [201] + [409] * 5


def test_consumer_changes_name_and_payment_method(api: Api) -> None:
    consumer = api.consumer()
    r = api.client.patch(
        "/v1/consumers/me",
        json={"name": "  Ann Lee  ", "payment_method": "pm_card_chargeDeclined"},
        headers=consumer["headers"],
    )
    assert r.status_code == 200, r.json
    assert (r.json["name"], r.json["payment_method"]) == ("Ann Lee", "pm_card_chargeDeclined")
    me = api.client.get("/v1/me", headers=consumer["headers"]).json
    assert (me["name"], me["payment_method"]) == ("Ann Lee", "pm_card_chargeDeclined")

    for bad in ({"name": "   "}, {"payment_method": "pm_cash"}, {"email": "x@example.com"}):
        r = api.client.patch("/v1/consumers/me", json=bad, headers=consumer["headers"])
        assert r.status_code == 422, (bad, r.json)
    worker = api.worker()
    r = api.client.patch("/v1/consumers/me", json={"name": "W"}, headers=worker["headers"])
    assert r.status_code == 403


def test_a_blank_name_is_refused_at_sign_up(api: Api) -> None:
    for path in ("/v1/consumers", "/v1/workers"):
        body = consumer_body(name="   ") if path == "/v1/consumers" else worker_body(name=" \t ")
        r = api.client.post(path, json=body)
        assert r.status_code == 422, r.json
        assert "name" in r.json["errors"], r.json


def test_a_name_longer_than_documented_is_refused_even_when_trimming_would_fit_it(
    api: Api, row_counts: RowCounts
) -> None:
    # The OpenAPI document says maxLength 200: a generated client's check and ours agree.
    before = row_counts()
    for path in ("/v1/consumers", "/v1/workers"):
        long = "\f" + "N" * 200  # 201 characters as sent, 200 once trimmed
        body = consumer_body(name=long) if path == "/v1/consumers" else worker_body(name=long)
        r = api.client.post(path, json=body)
        assert r.status_code == 422, r.json
        assert "name" in r.json["errors"], r.json
    assert row_counts() == before


def test_a_new_card_lets_the_operators_retry_succeed(gigco: GigCo) -> None:
    # On a test clock of the in-process kit: the declined card's retries come when the test
    # advances the clock past their backoff, not after it in real time.
    consumer = gigco.consumer(payment_method="pm_card_chargeDeclined")
    job_id, clock = failed_payment_on_clock(gigco, consumer)
    gigco.act(OPERATOR, job_id, "payment/retry")
    assert (gigco.job(consumer, job_id)["status"], refused(gigco, job_id)) == ("completed", 4)
    clock.advance(hours=1)
    assert gigco.job(consumer, job_id)["status"] == "payment_failed"  # the same card again

    gigco.call("PATCH", "/v1/consumers/me", consumer, {"payment_method": "pm_card_visa"}, 200)
    gigco.act(OPERATOR, job_id, "payment/retry")
    assert gigco.job(consumer, job_id)["status"] == "review_pending"
    payment = gigco.call("GET", f"/v1/jobs/{job_id}/payment", OPERATOR)
    assert payment["status"] == "succeeded"
    assert [a["outcome"] for a in payment["attempts"]] == ["declined"] * 6 + ["succeeded"]
