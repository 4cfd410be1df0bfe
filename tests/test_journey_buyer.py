"""A buyer's pages of seeds 001/004 played in order over real HTTP: sign in, like a model,
fill the cart, apply the demo coupon, check out through the embedded payment provider (the
test provider's `tok_visa`), see the purchases page, open a download link in a tab with no
header (the file arrives and is counted once), then leave a comment on the model page."""
from __future__ import annotations

import pytest
from demo_accounts import BUYER, CREATOR, ROBOT

from tests.journeys import ABSOLUTE, EXPLORER, TRUCK, open_tab, sign_in


@pytest.mark.gen_test(timeout=120)
async def test_buyer_likes_fills_the_cart_pays_with_a_coupon_and_downloads(api, http_client,
                                                                           base_url):
    token = await sign_in(api, BUYER)

    # marketplace: like a model, the card shows it
    liked = await api("POST", f"/api/models/{EXPLORER}/like", token=token)
    assert liked.status == 201 and liked.json["liked"] is True
    card = (await api("GET", f"/api/models/{EXPLORER}", token=token)).json
    assert card["likes"] == liked.json["likes"] >= 1
    assert (await api("POST", f"/api/models/{EXPLORER}/like", token=token)).status == 409

    # cart: two models, the header counts them
    for model_id in (ROBOT, TRUCK):
        added = await api("POST", "/api/cart", token=token, json={"model_id": model_id})
        assert added.status == 201, added.json
    cart = (await api("GET", "/api/cart", token=token)).json
    assert cart["item_count"] == 2 and cart["subtotal"] == 19.99 + 29.99
    assert {i["model"]["id"] if "model" in i else i["model_id"] for i in cart["items"]} == \
        {ROBOT, TRUCK}
    again = await api("POST", "/api/cart", token=token, json={"model_id": ROBOT})
    assert again.status == 409 and again.json["error_code"] == "ALREADY_IN_CART"

    # the demo coupon: 10 % off
    quoted = await api("POST", "/api/cart/apply-coupon", token=token, json={"code": "WELCOME10"})
    assert quoted.status == 200, quoted.json
    assert quoted.json["coupon"]["code"] == "WELCOME10"
    assert quoted.json["discount"] == 5.0 and quoted.json["total"] == 44.98
    wrong = await api("POST", "/api/cart/apply-coupon", token=token, json={"code": "NOPE"})
    assert wrong.status == 404 and wrong.json["error_code"] == "NOT_FOUND"

    # checkout (seed 001 §16): the response the confirmation page reads
    downloads_before = (await api("GET", f"/api/models/{ROBOT}")).json["downloads"]
    paid = await api("POST", "/api/checkout", token=token, json={
        "model_ids": [ROBOT, TRUCK], "payment_method": "card", "coupon_code": "WELCOME10",
        "payment_details": {"card_token": "tok_visa"}})
    assert paid.status == 200, paid.json
    receipt = paid.json
    assert receipt["transaction_id"].startswith("TXN-") and receipt["total_amount"] == 44.98
    assert receipt["platform_fee"] > 0
    links = {p["model_id"]: p["download_url"] for p in receipt["purchases"]}
    assert set(links) == {ROBOT, TRUCK} and all(u.startswith(ABSOLUTE) for u in links.values())
    assert (await api("GET", "/api/cart", token=token)).json["item_count"] == 0

    # purchases page
    listed = (await api("GET", "/api/purchases", token=token)).json
    bought = {p["model_id"] if "model_id" in p else p["model"]["id"]: p for p in listed["items"]}
    assert {ROBOT, TRUCK} <= set(bought)
    assert bought[ROBOT]["download_url"].startswith(ABSOLUTE)

    # the download link opened in a tab: no header, the file arrives, counted once
    opened = await open_tab(http_client, base_url, links[ROBOT])
    assert opened.code == 302
    stored = await open_tab(http_client, base_url, opened.headers["Location"])
    assert stored.code == 200 and stored.body[:4] == b"glTF"
    assert stored.headers["Content-Disposition"].startswith("attachment")
    assert (await api("GET", f"/api/models/{ROBOT}")).json["downloads"] == downloads_before + 1
    state = (await api("GET", f"/api/purchases/{ROBOT}/download", token=token)).json
    assert state["download_count"] == 1

    # the coupon is used up for this buyer
    used = await api("POST", "/api/cart/apply-coupon", token=token, json={"code": "WELCOME10"})
    assert used.status == 400 and used.json["error_code"] == "COUPON_LIMIT_REACHED"


@pytest.mark.gen_test(timeout=60)
async def test_buyer_comments_on_a_model_and_the_creator_is_told(api):
    token = await sign_in(api, BUYER)
    said = await api("POST", f"/api/models/{ROBOT}/comments", token=token,
                     json={"content": "  Great topology, thanks!  "})
    assert said.status == 201, said.json
    assert said.json["content"] == "Great topology, thanks!"
    assert said.json["author"]["username"] == "buyer"
    shown = (await api("GET", f"/api/models/{ROBOT}/comments")).json
    assert shown["items"][0]["id"] == said.json["id"] and shown["total"] >= 1
    assert (await api("GET", f"/api/models/{ROBOT}")).json["comment_count"] == shown["total"]
    reply = await api("POST", f"/api/models/{ROBOT}/comments", token=await sign_in(api, CREATOR),
                      json={"content": "Thank you!", "parent_id": said.json["id"]})
    assert reply.status == 201 and reply.json["parent_id"] == said.json["id"]
    creator = await sign_in(api, CREATOR)
    told = (await api("GET", "/api/notifications", token=creator)).json["items"]
    assert any(n["type"] == "comment_received" for n in told)
    refused = await api("POST", f"/api/models/{ROBOT}/comments", json={"content": "anon"})
    assert refused.status == 401 and refused.json["error_code"] == "UNAUTHORIZED"
