"""The embedded store's write feed tells its listeners about every kind of write to a
watched collection, and about nothing else."""
from __future__ import annotations

import pytest
from mongomock_motor import AsyncMongoMockClient
from pymongo import InsertOne
from pymongo.errors import DuplicateKeyError

from documents.write_feed import FeedDatabase, WriteFeed


@pytest.mark.gen_test
async def test_every_write_to_a_watched_collection_is_reported_once():
    feed = WriteFeed()
    heard: list[str] = []
    stop = feed.listen("users", lambda: heard.append("users"))
    db = FeedDatabase(AsyncMongoMockClient(tz_aware=True)["feed"], feed)
    users = db["users"]
    await users.insert_one({"_id": 1, "name": "a"})
    await users.insert_many([{"_id": 2}, {"_id": 3}])
    await users.update_one({"_id": 1}, {"$set": {"name": "b"}})
    await users.update_many({}, {"$set": {"seen": True}})
    await users.replace_one({"_id": 2}, {"name": "c"})
    await users.find_one_and_update({"_id": 1}, {"$set": {"name": "d"}})
    await users.find_one_and_replace({"_id": 3}, {"name": "e"})
    await users.find_one_and_delete({"_id": 3})
    await users.delete_one({"_id": 2})
    await users.delete_many({})
    await users.bulk_write([InsertOne({"_id": 9})])
    assert len(heard) == 11
    # reads, other collections and attribute access are not writes
    assert await db.users.find_one({"_id": 9}) == {"_id": 9}
    assert await db["users"].count_documents({}) == 1
    await db["models"].insert_one({"_id": 1})
    assert len(heard) == 11
    await db.users.update_one({"_id": 9}, {"$set": {"x": 1}})   # attribute access is watched too
    await db.drop_collection("users")
    assert len(heard) == 13
    stop()
    await db["users"].insert_one({"_id": 10})
    assert len(heard) == 13


@pytest.mark.gen_test
async def test_a_failed_write_is_reported_too():
    feed = WriteFeed()
    heard: list[int] = []
    feed.listen("users", lambda: heard.append(1))
    db = FeedDatabase(AsyncMongoMockClient()["feed"], feed)
    await db["users"].insert_one({"_id": 1})
    with pytest.raises(DuplicateKeyError):
        await db["users"].insert_one({"_id": 1})   # duplicate key
    assert heard == [1, 1]
