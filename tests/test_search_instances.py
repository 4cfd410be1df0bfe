"""Search and suggestions across two instances of one store (README "Search"): what one
instance writes — an edit, staff hiding, a deletion — is found, or no longer found, on the
other at once, through `GET /api/models?search=`, `GET /api/search` and
`GET /api/search/suggest`.

On the embedded store both instances share the store handle and so its in-process term
index; on the wire store each has its own client and the store's terms index answers.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
from conftest import test_settings as settings_for
from demo_accounts import ADMIN, CREATOR, ROBOT
from instances import start_instance, stop_instance

pytestmark = pytest.mark.store  # opens instances on the test's store itself



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


async def token_for(instance, email: str) -> str:
    from documents import sessions, users

    user = await users.get_by_email(instance.services.db, email)
    return (await sessions.start_session(instance.services.db, instance.services.settings,
                                         user))["access_token"]


async def found(instance, text: str) -> list[str]:
    status, body = await instance.call("GET", "/api/models?limit=50&search=" + quote(text))
    assert status == 200, body
    return [item["id"] for item in body["items"]]


async def found_globally(instance, text: str) -> list[str]:
    status, body = await instance.call("GET", "/api/search?limit=50&q=" + quote(text))
    assert status == 200, body
    return [item["id"] for item in body["items"]]


async def titles_suggested(instance, text: str) -> list[tuple[str, str]]:
    status, body = await instance.call("GET", "/api/search/suggest?q=" + quote(text))
    assert status == 200, body
    return [(s["text"], s.get("id")) for s in body["items"] if s["type"] == "title"]


@pytest.mark.gen_test(timeout=120)
async def test_an_edit_hiding_and_deletion_on_one_instance_show_on_the_other_at_once(pair):
    a, b = pair
    creator = await token_for(a, CREATOR)
    admin = await token_for(b, ADMIN)
    status, model = await a.call("GET", f"/api/models/{ROBOT}")
    assert status == 200, model
    old_title = model["title"]
    assert ROBOT in await found(b, old_title) and ROBOT in await found(b, "robot")
    assert (old_title, ROBOT) in await titles_suggested(b, old_title)

    # the creator retitles it on one instance: the other finds the new words at once
    status, body = await a.call("PUT", f"/api/models/{ROBOT}", creator,
                                {"title": "Quillwort Teakettle"})
    assert status == 200, body
    for instance in (a, b):
        assert await found(instance, "quillwort teakettle") == [ROBOT]
        assert await found(instance, "teakettles quill") == [ROBOT]
        assert ROBOT in await found_globally(instance, "quillwort")
        assert ("Quillwort Teakettle", ROBOT) in await titles_suggested(instance, "quillw")
        assert (old_title, ROBOT) not in await titles_suggested(instance, old_title)

    # staff hide it on the other instance: gone everywhere at once, for everyone
    status, body = await b.call("PUT", f"/api/admin/models/{ROBOT}/reject", admin,
                                {"reason": "Hidden by staff"})
    assert status == 200, body
    for instance in (a, b):
        assert await found(instance, "quillwort") == []
        assert await found_globally(instance, "quillwort teakettle") == []
        assert await titles_suggested(instance, "quillw") == []

    # approved again it is back; deleted by its creator it is gone for good
    status, body = await b.call("PUT", f"/api/admin/models/{ROBOT}/approve", admin, {})
    assert status == 200, body
    assert await found(a, "quillwort") == [ROBOT]
    status, body = await b.call("DELETE", f"/api/models/{ROBOT}", creator)
    assert status == 204, body
    for instance in (a, b):
        assert await found(instance, "quillwort teakettle") == []
        assert await found_globally(instance, "quillwort") == []
        assert await titles_suggested(instance, "quillw") == []
        assert ROBOT not in await found(instance, "robot")
