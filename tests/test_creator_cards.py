"""Creator cards beside models stay true while they are cached (`documents.cards`).

On a MongoDB server (the wire store) each process keeps the cards its catalog pages show
and a change stream on `users` evicts them; on the in-memory store the store's write feed
empties them after any write to `users`. Both ways, a profile edit shows on the editor's own
instance at once, and a change written by another process (another instance, a migration)
shows on every instance.
"""
from __future__ import annotations

import pytest
from conftest import eventually
from conftest import test_settings as settings_for
from demo_accounts import CREATOR, CREATOR_ID, ROBOT
from instances import start_instance, stop_instance

pytestmark = pytest.mark.store  # opens instances on the test's store itself



async def card(instance, path: str = f"/api/models/{ROBOT}") -> dict:
    status, body = await instance.call("GET", path)
    assert status == 200, body
    return body["creator"] if "creator" in body else body["items"][0]["creator"]


@pytest.fixture
def pair(io_loop, tmp_path):
    settings = settings_for(tmp_path)

    async def start():
        a = await start_instance(settings)
        return a, await start_instance(settings, db=a.services.db)

    a, b = io_loop.run_sync(start, timeout=60)
    yield a, b
    io_loop.run_sync(lambda: stop_instance(b), timeout=30)
    io_loop.run_sync(lambda: stop_instance(a), timeout=30)


@pytest.mark.gen_test(timeout=60)
async def test_a_profile_edit_shows_on_the_editors_instance_at_once_and_on_the_other(pair):
    from documents import cards, sessions, users

    a, b = pair
    assert (await card(a))["full_name"] == "Chris Creator"
    assert (await card(b))["full_name"] == "Chris Creator"           # both cached now
    for instance in pair:  # the cache runs (change stream open, or the write feed) and holds it
        cache = cards._caches[id(instance.services.db)]
        assert cache.live and CREATOR_ID in {str(k) for k in cache.cards}
    creator = await users.get_by_email(a.services.db, CREATOR)
    token = (await sessions.start_session(a.services.db, a.services.settings,
                                          creator))["access_token"]
    status, body = await a.call("PUT", "/api/users/me", token, {"full_name": "Chris Renamed"})
    assert status == 200, body
    assert (await card(a))["full_name"] == "Chris Renamed"
    assert (await card(a, "/api/models?limit=1&creator=creator"))["full_name"] == "Chris Renamed"

    async def renamed_on_b():
        return (await card(b))["full_name"] == "Chris Renamed"

    await eventually(renamed_on_b, what="the new name on the other instance")


@pytest.mark.gen_test(timeout=60)
async def test_a_write_by_another_process_shows_on_every_instance(pair):
    from bson import ObjectId

    a, b = pair
    for instance in pair:
        assert (await card(instance))["avatar_url"] is None
    # another writer than our code paths: straight to the store
    await a.services.db["users"].update_one({"_id": ObjectId(CREATOR_ID)},
                                            {"$set": {"avatar_url": "https://cdn.example/c.png",
                                                      "is_verified_creator": False}})
    for instance in (a, b):
        async def updated(instance=instance):
            shown = await card(instance)
            return shown["avatar_url"] == "https://cdn.example/c.png" and \
                shown["is_verified_creator"] is False

        await eventually(updated, what="the new avatar")
