"""The first superadmin from ADMIN_EMAIL / ADMIN_PASSWORD (README
configuration table): created at start-up on an empty store, once; nothing on a seeded store;
a bad value stops start-up naming the variable."""
from __future__ import annotations

import asyncio
import time

import pytest
from conftest import test_settings as make_settings

from composition import close_services, open_services
from config import ConfigError, load_settings
from documents import accounts

pytestmark = pytest.mark.store  # opens instances on the test's store itself

OWNER = {"admin_email": "Owner@Example.com", "admin_password": "OwnerPass123"}


@pytest.fixture
def settings_overrides():
    return {**OWNER, "seed_fixtures": False}


@pytest.mark.gen_test
async def test_first_superadmin_on_an_empty_store_signs_in_and_administers(api, services):
    # start-up (open_services) created it; do it again from an empty store to see the result
    await services.db.users.delete_many({})
    created = await accounts.ensure_first_admin(services.db, services.settings)
    assert created["email"] == "owner@example.com" and created["staff_role"] == "superadmin"
    assert created["is_verified"] and created["is_active"] and created["username"] == "Owner"
    assert created["password_hash"] != OWNER["admin_password"]
    # a restart (or a second instance) creates nothing more
    assert await accounts.ensure_first_admin(services.db, services.settings) is None
    assert await services.db.users.count_documents({}) == 1

    login = await api("POST", "/api/auth/admin/login",
                      json={"email": "owner@example.com", "password": "OwnerPass123"})
    assert login.status == 200, login.json
    assert login.json["user"]["staff_role"] == "superadmin"
    assert login.json["two_factor_enabled"] is False
    listing = await api("GET", "/api/users", token=login.json["access_token"])
    assert listing.status == 200 and len(listing.json) == 1 and listing.headers["X-Total-Count"] == "1"
    wrong = await api("POST", "/api/auth/admin/login",
                      json={"email": "owner@example.com", "password": "OwnerPass124"})
    assert wrong.status == 401 and wrong.json["error_code"] == "INVALID_CREDENTIALS"


@pytest.mark.gen_test
async def test_two_instances_starting_together_create_one(services):
    await services.db.users.delete_many({})
    results = await asyncio.gather(*[accounts.ensure_first_admin(services.db, services.settings)
                                     for _ in range(3)])
    assert sum(r is not None for r in results) == 1
    assert await services.db.users.count_documents({"staff_role": "superadmin"}) == 1


@pytest.mark.gen_test
async def test_seeded_store_keeps_the_demo_admin_only(tmp_path):
    services = await open_services(make_settings(tmp_path, **OWNER))
    try:
        assert await accounts.ensure_first_admin(services.db, services.settings) is None
        assert await services.db.users.find_one({"email": "owner@example.com"}) is None
        assert await services.db.users.count_documents({"staff_role": "superadmin"}) == 1
    finally:
        await close_services(services)


@pytest.mark.gen_test
async def test_unset_variables_create_nothing(tmp_path):
    services = await open_services(make_settings(tmp_path), seed_fixtures=False)
    try:
        assert await accounts.ensure_first_admin(services.db, services.settings) is None
        assert await services.db.users.count_documents({}) == 0
    finally:
        await close_services(services)


@pytest.mark.gen_test
async def test_a_stuck_client_does_not_hold_up_shut_down(tmp_path):
    services = await open_services(make_settings(tmp_path), seed_fixtures=False)
    closed = []
    services.closers.insert(0, lambda: closed.append("first opened"))  # closed last
    services.closers.append(asyncio.Event().wait)  # a client whose close never returns
    started = time.monotonic()
    await close_services(services, timeout=0.5)
    assert time.monotonic() - started < 5
    assert closed == ["first opened"] and services.closers == []


@pytest.mark.parametrize("environ, name", [
    ({"ADMIN_EMAIL": "owner@example.com"}, "ADMIN_PASSWORD"),
    ({"ADMIN_PASSWORD": "OwnerPass123"}, "ADMIN_EMAIL"),
    ({"ADMIN_EMAIL": "owner", "ADMIN_PASSWORD": "OwnerPass123"}, "ADMIN_EMAIL"),
    ({"ADMIN_EMAIL": "owner@example.com", "ADMIN_PASSWORD": "short1"}, "ADMIN_PASSWORD"),
    ({"ADMIN_EMAIL": "owner@example.com", "ADMIN_PASSWORD": "lettersonly"}, "ADMIN_PASSWORD"),
    ({"ADMIN_EMAIL": "owner@example.com", "ADMIN_PASSWORD": "1" * 73 + "a"}, "ADMIN_PASSWORD"),
])
def test_bad_admin_variables_stop_start_up_naming_them(environ, name):
    with pytest.raises(ConfigError, match=name):
        load_settings(environ=environ, dotenv_path=None)


@pytest.mark.gen_test
async def test_open_services_creates_the_first_superadmin(tmp_path):
    services = await open_services(make_settings(tmp_path, **OWNER), seed_fixtures=False)
    try:
        user = await services.db.users.find_one({"email": "owner@example.com"})
        assert user["staff_role"] == "superadmin" and user["password_hash"]
    finally:
        await close_services(services)


@pytest.mark.gen_test
async def test_seeded_store_keeps_its_demo_admin_and_adds_no_other(tmp_path):
    services = await open_services(make_settings(tmp_path, **OWNER))
    try:
        assert await services.db.users.count_documents({"email": "owner@example.com"}) == 0
        assert await services.db.users.count_documents({}) == 6
    finally:
        await close_services(services)
