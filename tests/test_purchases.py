"""Purchases and signed downloads on the embedded test provider and local storage: the
library, one purchase, download limits, expired and tampered links, who may see what."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from bson import ObjectId
from demo_accounts import BUYER, BUYER2, ROBOT

from tests.stripe_stub import WIZARD

# these tests count sales, purchases and balances from zero
pytestmark = pytest.mark.usefixtures("no_past_sales")


async def buy(api, token, *model_ids):
    reply = await api("POST", "/api/checkout", token=token,
                      json={"model_ids": list(model_ids), "payment_details": {"card_token": "tok_visa"}})
    assert reply.status == 200, reply.json
    return reply.json


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.mark.gen_test
async def test_library_and_one_purchase(api, tokens, services):
    token = await tokens(BUYER)
    order = await buy(api, token, ROBOT, WIZARD)
    listed = await api("GET", "/api/purchases?limit=1", token=token)
    assert listed.status == 200
    assert listed.json["total"] == 2 and listed.json["pages"] == 2 and len(listed.json["items"]) == 1
    item = listed.json["items"][0]
    assert item["model"]["title"] and "file_key" not in item["model"]
    assert item["download_limit"] == 10 and item["remaining_downloads"] == 10
    txn = order["transaction_ids"][0]
    one = await api("GET", f"/api/purchases/{txn}", token=token)
    assert one.status == 200
    assert one.json["transaction_id"] == txn and one.json["amount"] == 19.99
    assert one.json["platform_fee"] == 1.5 and one.json["seller_amount"] == 18.49
    assert one.json["payment_status"] == "completed" and one.json["order_number"].startswith("ORD-")
    assert one.json["purchase"]["model_id"] == ROBOT and one.json["model"]["id"] == ROBOT
    other = await tokens(BUYER2)
    assert (await api("GET", f"/api/purchases/{txn}", token=other)).status == 404
    assert (await api("GET", "/api/purchases/TXN-1999-000001", token=token)).status == 404
    assert (await api("GET", "/api/purchases/%00bad", token=token)).status == 404
    assert (await api("GET", "/api/purchases", token=other)).json["total"] == 0
    assert (await api("GET", "/api/purchases")).status == 401
    assert (await api("GET", "/api/purchases?page=0", token=token)).status == 422
    assert (await api("GET", "/api/purchases?_=1", token=token)).status == 200    # cache buster


async def follow(api, url: str):
    """Open a download link without any header, as a browser tab does; then the storage
    URL it redirects to. Returns (link reply, file reply)."""
    link = await api("GET", local_path(url))
    if link.status != 302:
        return link, None
    return link, await api("GET", local_path(link.headers["Location"]))


@pytest.mark.gen_test(timeout=60)
async def test_signed_download_and_limit(api, tokens, services):
    token = await tokens(BUYER)
    order = await buy(api, token, ROBOT)
    before = (await services.db.models.find_one({"_id": ObjectId(ROBOT)}))["downloads"]
    first = await api("GET", f"/api/purchases/{ROBOT}/download", token=token)
    assert first.status == 200, first.json
    link = first.json
    assert link["download_count"] == 0 and link["remaining_downloads"] == 10
    assert link["expires_in"] == services.settings.download_url_ttl_minutes * 60
    assert link["filename"].endswith(".glb")
    _, fetched = await follow(api, link["download_url"])
    assert fetched.status == 200 and fetched.body[:4] == b"glTF"
    assert fetched.headers["Content-Disposition"].startswith("attachment")
    for n in range(2, 11):
        reply = await api("GET", f"/api/purchases/{ROBOT}/download", token=token)
        assert reply.status == 200 and reply.json["download_count"] == n - 1
        await follow(api, reply.json["download_url"])
    by_txn = await api("GET", f"/api/purchases/{order['transaction_id']}/download-link", token=token)
    assert by_txn.status == 403 and by_txn.json["error_code"] == "DOWNLOAD_LIMIT_REACHED"
    eleventh = await api("GET", f"/api/purchases/{ROBOT}/download", token=token)
    assert eleventh.status == 403 and eleventh.json["error_code"] == "DOWNLOAD_LIMIT_REACHED"
    after = (await services.db.models.find_one({"_id": ObjectId(ROBOT)}))["downloads"]
    assert after - before == 10
    purchase = await services.db.purchases.find_one({"model_id": ObjectId(ROBOT)})
    assert purchase["download_count"] == 10


@pytest.mark.gen_test(timeout=60)
async def test_expired_and_tampered_links_are_refused(api, tokens, services):
    token = await tokens(BUYER)
    await buy(api, token, ROBOT)
    link = (await api("GET", f"/api/purchases/{ROBOT}/download", token=token)).json
    followed, _ = await follow(api, link["download_url"])
    url = followed.headers["Location"]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    key = parts.path.split("/files/", 1)[1]
    tampered = dict(query, signature="0" * 64)
    reply = await api("GET", f"{parts.path}?{urlencode(tampered)}")
    assert reply.status == 403
    other_key = dict(query)
    reply = await api("GET", f"/files/models/space-explorer.glb?{urlencode(other_key)}")
    assert reply.status == 403
    stretched = dict(query, expires=str(int(query["expires"]) + 3600))
    assert (await api("GET", f"{parts.path}?{urlencode(stretched)}")).status == 403
    past = int(time.time()) - 10
    expired = dict(query, expires=str(past), signature=services.storage.signature(key, past))
    assert (await api("GET", f"{parts.path}?{urlencode(expired)}")).status == 403
    assert (await api("GET", parts.path)).status == 403
    assert (await api("GET", local_path(url))).status == 200
    token_path = urlsplit(link["download_url"]).path
    bad = await api("GET", token_path[:-4] + "abcd")
    assert bad.status == 403 and bad.json["error_code"] == "DOWNLOAD_LINK_INVALID"


@pytest.mark.gen_test
async def test_download_needs_a_purchase(api, tokens, services):
    token = await tokens(BUYER)
    order = await buy(api, token, WIZARD)
    not_bought = await api("GET", f"/api/purchases/{ROBOT}/download", token=token)
    assert not_bought.status == 403 and not_bought.json["error_code"] == "NOT_PURCHASED"
    assert (await api("GET", "/api/purchases/652000000000000000009999/download",
                      token=token)).status == 404
    assert (await api("GET", "/api/purchases/xyz/download", token=token)).status == 404
    other = await tokens(BUYER2)
    theirs = await api("GET", f"/api/purchases/{order['transaction_id']}/download-link", token=other)
    assert theirs.status == 404
    assert (await api("GET", f"/api/purchases/{WIZARD}/download")).status == 401
    assert await services.db.purchases.count_documents({"download_count": {"$gt": 0}}) == 0
