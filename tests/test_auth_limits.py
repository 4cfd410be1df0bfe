"""Rate limits of the credential routes (seed 001 §21): 5 a minute per client IP
and 5 a minute per account, 429 RATE_LIMIT_EXCEEDED with `retry_after` and `Retry-After`.

Requests come from two loopback source addresses (127.0.0.1 and 127.0.0.2) so that the
per-IP and the per-account limits can be told apart.
"""

import pytest
from auth_support import PASSWORD, WINDOW, fresh_window, register
from demo_accounts import BUYER


@pytest.fixture
def settings_overrides():
    return {"rate_limits_enabled": True}


@pytest.mark.gen_test(timeout=90)
async def test_sixth_login_a_minute_from_one_ip_is_429(api, post_from, services):
    assert services.settings.rate_limit_auth.count == 5
    assert services.settings.rate_limit_auth.seconds == WINDOW
    await fresh_window()
    for index in range(5):
        status, body, _ = await post_from("127.0.0.1", "/api/auth/login",
                                          {"email": f"nobody{index}@example.com",
                                           "password": "Wrong12345"})
        assert status == 401, body
    status, body, headers = await post_from("127.0.0.1", "/api/auth/login",
                                            {"email": "other@example.com",
                                             "password": "Wrong12345"})
    assert status == 429 and body["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert 1 <= body["retry_after"] <= WINDOW
    assert headers["Retry-After"] == str(body["retry_after"])
    # another client is not affected, and neither are the other routes
    status, _, _ = await post_from("127.0.0.2", "/api/auth/login",
                                   {"email": "other@example.com", "password": "Wrong12345"})
    assert status == 401
    assert (await api("GET", "/healthz")).status == 200


@pytest.mark.gen_test(timeout=90)
async def test_per_account_limit_holds_across_ips_and_login_names(api, post_from):
    await fresh_window()
    await register(api, "target")  # from 127.0.0.1: one of its five
    logins = [{"email": "target@example.com"}, {"username": "TARGET"},
              {"usernameOrEmail": "target"}, {"email": "Target@Example.com"}]
    for login in logins:  # four more from 127.0.0.1: its per-IP budget is used up
        status, body, _ = await post_from("127.0.0.1", "/api/auth/login",
                                          {**login, "password": "Wrong12345"})
        assert status == 401, body
    # four attempts on the account so far, under four spellings of its name: a different
    # IP may try once more on that account, then no more.
    status, _, _ = await post_from("127.0.0.2", "/api/auth/login",
                                   {"username": "target", "password": PASSWORD})
    assert status == 200
    status, body, _ = await post_from("127.0.0.2", "/api/auth/login",
                                      {"username": "target", "password": PASSWORD})
    assert status == 429 and body["error_code"] == "RATE_LIMIT_EXCEEDED"
    # the second IP can still sign in to another account
    status, _, _ = await post_from("127.0.0.2", "/api/auth/login",
                                   {"username": "someone", "password": "Wrong12345"})
    assert status == 401


@pytest.mark.gen_test(timeout=90)
async def test_forgot_password_is_limited_per_email(post_from, services):
    await fresh_window()
    for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
        status, _, _ = await post_from(source, "/api/auth/forgot-password",
                                       {"email": BUYER})
        assert status == 200
    status, _body, headers = await post_from("127.0.0.6", "/api/auth/forgot-password",
                                            {"email": "BUYER@hwc3d.com"})
    assert status == 429 and "Retry-After" in headers


@pytest.mark.gen_test(timeout=90)
async def test_refresh_and_me_use_the_general_limit(api):
    await fresh_window()
    session = (await register(api)).json
    refresh = session["refresh_token"]
    for _ in range(6):
        reply = await api("POST", "/api/auth/refresh", json={"refresh_token": refresh})
        assert reply.status == 200
        refresh = reply.json["refresh_token"]
    for _ in range(6):
        assert (await api("GET", "/api/auth/me", token=reply.json["access_token"])).status == 200
