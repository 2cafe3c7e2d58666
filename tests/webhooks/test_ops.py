"""The console's webhook pages: endpoints, deliveries with attempts, and a CSRF-checked retry."""

from __future__ import annotations

from tests.harness.console import Ops, table
from tests.harness.http import Api
from tests.harness.polling import wait_for
from tests.harness.webhooks import Receiver, register


def test_operator_sees_endpoints_and_deliveries_and_retries_one(
    api: Api, ops: Ops, receiver: Receiver
) -> None:
    receiver.answer = lambda path, headers, tries: 500
    consumer = api.consumer()
    hook = register(api, consumer["headers"], receiver.url("/down"))
    assert (
        api.client.post(
            f"/v1/webhook-endpoints/{hook['id']}/ping", headers=consumer["headers"]
        ).status_code
        == 202
    )
    path = f"/v1/webhook-endpoints/{hook['id']}/deliveries"
    (delivery,) = wait_for(
        lambda: (
            (d := api.client.get(path, headers=consumer["headers"]).json)
            and d[0]["status"] == "failed"
            and d
        ),
        timeout=20,
        what="the ping to fail",
    )
    endpoints = table(ops.page("/ops/webhooks").text, "webhooks")
    mine = next(row for row in endpoints if row[0] == str(hook["id"]))
    assert mine[1:5] == [f"consumer #{consumer['id']}", hook["url"], "yes", "1"]

    page = f"/ops/webhooks/{hook['id']}"
    rows = table(ops.page(page).text, "deliveries")
    assert [(r[0], r[1], r[3]) for r in rows] == [(str(delivery["id"]), "ping", "failed")]
    assert rows[0][5].count("500") == 4

    action = f"{page}/deliveries/{delivery['id']}/retry"
    assert ops.client.post(action, data={"csrf_token": "forged"}).status_code == 400
    receiver.answer = lambda path, headers, tries: 200
    r = ops.submit(page, action)
    assert (r.status_code, r.headers["Location"]) == (303, page)
    wait_for(
        lambda: api.client.get(path, headers=consumer["headers"]).json[0]["status"] == "delivered",
        what="the retried ping to be delivered",
    )
    ids = {r.headers["webhook-id"] for r in receiver.at("/down")}
    assert ids == {delivery["webhook_id"]}  # the retry is the same message
