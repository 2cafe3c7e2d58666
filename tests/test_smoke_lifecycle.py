"""A job posted over HTTP is priced and offered by the live worker."""

from tests.harness.http import Api


def test_new_job_is_offered_within_a_second_with_the_right_price(api: Api) -> None:
    consumer = api.consumer()
    job = api.post_job(consumer, estimated_hours=2.25)
    offered = api.wait_status(job["id"], "offered", timeout=1.0)
    # plumbing is 9000 ¢/h: 2.25 h → 20250, fee 10 % → 2025
    assert (offered["subtotal_cents"], offered["fee_cents"], offered["price_cents"]) == (
        20250,
        2025,
        22275,
    )
    assert offered["offer_expires_at"] is not None
    assert [
        (e["seq"], e["type"], e["from_status"], e["to_status"]) for e in api.events(job["id"])
    ] == [
        (1, "created", None, "draft"),
        (2, "priced", "draft", "priced"),
        (3, "offered", "priced", "offered"),
    ]
