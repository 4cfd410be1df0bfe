"""Upload limits (seed 001 §15, §21; docs/architecture.md §7): sizes enforced while streaming (413 and
nothing stored), the upload rate limit, and the analysis time limit."""
from __future__ import annotations

import os

import pytest
from demo_accounts import BUYER, CREATOR
from tornado.httpclient import HTTPRequest
from upload_support import (
    MODEL_FIELDS,
    image_bytes,
    mesh_bytes,
    multipart,
    nothing_stored,
    stored_objects,
    temp_files,
    upload,
)

from config import RateLimit

IMAGE_LIMIT = 50_000


@pytest.fixture
def settings_overrides():
    return {"max_image_bytes": IMAGE_LIMIT, "max_avatar_bytes": 20_000,
            "max_model_bytes": 300_000, "max_attachment_bytes": 30_000,
            "rate_limits_enabled": True, "rate_limit_upload": RateLimit(6, 3600),
            "analysis_timeout_seconds": 0.001}


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("path,size", [("/api/upload/image", IMAGE_LIMIT + 1),
                                       ("/api/upload/avatar", 20_001),
                                       ("/api/upload/attachment", 30_001),
                                       ("/api/upload/model", 300_001)])
async def test_a_part_over_its_limit_is_413_while_streaming(api, tokens, services, path, size):
    before = stored_objects(services)
    data = os.urandom(size)
    reply = await upload(api, path, await tokens(CREATOR), [("file", "big.png", data)])
    assert reply.status == 413, reply.json
    assert reply.json["error_code"] == "FILE_TOO_LARGE"
    await nothing_stored(services, before)


@pytest.mark.gen_test(timeout=60)
async def test_a_declared_length_over_the_limit_is_refused_before_reading(http_client, base_url,
                                                                           tokens, services):
    before = stored_objects(services)
    body, headers = multipart(files=[("file", "huge.png", os.urandom(2_000_000))])
    headers["Authorization"] = f"Bearer {await tokens(CREATOR)}"
    request = HTTPRequest(base_url + "/api/upload/image", method="POST", headers=headers,
                          body=body, expect_100_continue=True, request_timeout=30)
    reply = await http_client.fetch(request, raise_error=False)
    assert reply.code == 413
    await nothing_stored(services, before)


@pytest.mark.gen_test(timeout=60)
async def test_model_creation_with_an_oversized_preview_stores_nothing(api, tokens, services):
    before = stored_objects(services)
    models_before = await services.db.models.count_documents({})
    category = (await services.db.categories.find_one({"is_active": True}))["name"]
    files = [("file", "a.glb", mesh_bytes("glb")),
             ("preview_images", "p.png", image_bytes((8, 8), fmt="PNG")),
             ("preview_images", "big.png", os.urandom(IMAGE_LIMIT + 10))]
    reply = await upload(api, "/api/models/upload", await tokens(CREATOR), files,
                         dict(MODEL_FIELDS, category=category))
    assert reply.status == 413 and reply.json["error_code"] == "FILE_TOO_LARGE"
    await nothing_stored(services, before)
    assert await services.db.models.count_documents({}) == models_before


@pytest.mark.gen_test(timeout=60)
async def test_slow_analysis_is_stored_unanalysed_and_the_pool_is_renewed(api, tokens, services):
    pool = services.analysis_pool
    reply = await upload(api, "/api/upload/model", await tokens(CREATOR),
                         [("file", "a.glb", mesh_bytes("glb"))])
    assert reply.status == 201
    assert reply.json["analyzed"] is False and reply.json["poly_count"] is None
    assert services.analysis_pool is not pool
    assert temp_files(services) == []


@pytest.mark.gen_test(timeout=60)
async def test_upload_rate_limit_is_per_user(api, tokens):
    token = await tokens(CREATOR)
    png = image_bytes((8, 8), fmt="PNG")
    for _ in range(6):
        reply = await upload(api, "/api/upload/image", token, [("file", "a.png", png)])
        assert reply.status == 201
    reply = await upload(api, "/api/upload/image", token, [("file", "a.png", png)])
    assert reply.status == 429 and reply.json["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert int(reply.headers["Retry-After"]) > 0
    other = await upload(api, "/api/upload/image", await tokens(BUYER),
                         [("file", "a.png", png)])
    assert other.status == 201
