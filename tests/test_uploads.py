"""Uploads over real HTTP (seed 000 §8, seed 001 §6 and §15, docs/architecture.md §7): models analysed with
trimesh, images and avatars with Pillow, type by content, size limits, signed local URLs,
deletion rules, model creation with files."""
from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import pytest
import trimesh
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, CREATOR, CREATOR2
from PIL import Image
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

# --------------------------------------------------------------------------- helpers
# multipart bodies and file bytes live in tests/upload_support.py, shared with other modules


async def fetch(http_client, url: str):
    return await http_client.fetch(url, raise_error=False)


def local_path(url: str) -> str:
    """The path and query of a URL issued by the server (its public_url is not the test port)."""
    parsed = urlparse(url)
    return urlunparse(("", "", parsed.path, "", parsed.query, ""))


# --------------------------------------------------------------------------- models

@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("file_type", ["glb", "obj", "stl", "ply"])
async def test_model_upload_is_analysed(api, tokens, services, http_client, base_url, file_type):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    data = mesh_bytes(file_type, mesh)
    token = await tokens(CREATOR)
    reply = await upload(api, "/api/upload/model", token, [("file", f"sphere.{file_type}", data)])
    assert reply.status == 201, reply.json
    body = reply.json
    assert body["poly_count"] == len(mesh.faces)
    assert body["file_format"] == file_type.upper()
    assert body["file_size"] == len(data)
    assert body["analyzed"] is True and body["has_animations"] is False
    assert body["bounds"] == [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]
    record = await services.db.files.find_one({"_id": ObjectId(body["file_id"])})
    assert record["kind"] == "model" and record["url"] is None
    assert record["key"].startswith("models/") and record["key"].endswith(f".{file_type}")
    assert record["original_name"] == f"sphere.{file_type}"
    served = await fetch(http_client, base_url + local_path(body["file_url"]))
    assert served.code == 200 and served.body == data
    assert temp_files(services) == []


@pytest.mark.gen_test(timeout=60)
async def test_gltf_with_embedded_buffers_is_analysed(api, tokens):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    files = trimesh.exchange.gltf.export_gltf(trimesh.Scene(mesh), embed_buffers=True)
    (name, data), = files.items()
    reply = await upload(api, "/api/upload/model", await tokens(CREATOR), [("file", name, data)])
    assert reply.status == 201, reply.json
    assert reply.json["file_format"] == "GLTF" and reply.json["poly_count"] == 80


@pytest.mark.gen_test(timeout=60)
async def test_model_file_alias_and_glb_vertex_count(api, tokens):
    mesh = trimesh.creation.box()
    reply = await upload(api, "/api/upload/model-file", await tokens(CREATOR),
                         [("file", "box.glb", mesh_bytes("glb", mesh))])
    assert reply.status == 201
    assert (reply.json["poly_count"], reply.json["vertex_count"]) == (12, 8)


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("name,data", [
    ("fake.glb", None),
    ("notes.glb", b"just some words\nnothing 3d about them\n"),
    ("empty.glb", b""),
])
async def test_mistyped_model_is_refused(api, tokens, services, name, data):
    before = stored_objects(services)
    data = image_bytes(fmt="PNG") if data is None else data
    reply = await upload(api, "/api/upload/model", await tokens(CREATOR), [("file", name, data)])
    assert reply.status == 400
    assert reply.json["error_code"] == "INVALID_FILE_TYPE"
    await nothing_stored(services, before)


@pytest.mark.gen_test(timeout=60)
async def test_malformed_glb_is_400_and_the_pool_still_works(api, tokens, services):
    token = await tokens(CREATOR)
    before = stored_objects(services)
    good = mesh_bytes("glb")
    broken = good[:40] + b"\x00\xff" * 200
    reply = await upload(api, "/api/upload/model", token, [("file", "bad.glb", broken)])
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_MODEL_FILE"
    await nothing_stored(services, before)
    reply = await upload(api, "/api/upload/model", token, [("file", "good.glb", good)])
    assert reply.status == 201 and reply.json["poly_count"] == 1280


@pytest.mark.gen_test(timeout=60)
async def test_dead_analysis_worker_is_replaced(api, tokens, services):
    token = await tokens(CREATOR)
    reply = await upload(api, "/api/upload/model", token, [("file", "a.glb", mesh_bytes("glb"))])
    assert reply.status == 201
    pool = services.analysis_pool
    for process in list(pool._processes.values()):
        process.kill()
        process.join(5)
    reply = await upload(api, "/api/upload/model", token, [("file", "b.stl", mesh_bytes("stl"))])
    assert reply.status == 201 and reply.json["poly_count"] == 1280
    assert services.analysis_pool is not pool


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("name,data,fmt", [
    ("rig.fbx", b"Kaydara FBX Binary  \x00\x1a\x00" + bytes(range(256)) * 8, "FBX"),
    ("scene.fbx", b"; FBX 7.4.0 project file\nFBXHeaderExtension:  {\n}\n", "FBX"),
    ("scene.blend", b"BLENDER-v300" + b"\x00" * 512, "BLEND"),
])
async def test_fbx_and_blend_are_stored_not_analysed(api, tokens, services, name, data, fmt):
    reply = await upload(api, "/api/upload/model", await tokens(CREATOR), [("file", name, data)])
    assert reply.status == 201, reply.json
    assert reply.json["file_format"] == fmt
    assert reply.json["analyzed"] is False and reply.json["poly_count"] is None
    record = await services.db.files.find_one({})
    assert record["analysis"]["analyzed"] is False


@pytest.mark.gen_test(timeout=60)
async def test_analyze_returns_figures_and_stores_nothing(api, tokens, services):
    before = stored_objects(services)
    mesh = trimesh.creation.icosphere(subdivisions=1)
    reply = await upload(api, "/api/models/analyze", await tokens(BUYER),
                         [("file", "x.obj", mesh_bytes("obj", mesh))])
    assert reply.status == 200
    assert reply.json["poly_count"] == len(mesh.faces) == 80
    assert reply.json["file_format"] == "OBJ" and reply.json["analyzed"] is True
    await nothing_stored(services, before)


@pytest.mark.gen_test(timeout=60)
async def test_missing_file_part_and_non_multipart_body(api, tokens, services):
    token = await tokens(CREATOR)
    reply = await upload(api, "/api/upload/model", token, [], {"title": "x"})
    assert reply.status == 422 and "file" in reply.json["field_errors"]
    reply = await api("POST", "/api/upload/model", token=token, json={"file": "abc"})
    assert reply.status == 400 and reply.json["error_code"] == "BAD_REQUEST"
    body, headers = multipart(files=[("file", "a.glb", mesh_bytes("glb"))])
    reply = await api("POST", "/api/upload/model", token=token, headers=headers,
                      body=body[: len(body) // 2])
    assert reply.status == 400 and reply.json["error_code"] == "BAD_REQUEST"
    assert await services.db.files.count_documents({}) == 0


# --------------------------------------------------------------------------- images

@pytest.mark.gen_test(timeout=60)
async def test_image_upload_measures_thumbnails_and_strips_exif(api, tokens, services, http_client,
                                                                base_url):
    data = image_bytes((1200, 800), exif=True)
    assert Image.open(io.BytesIO(data)).getexif()
    reply = await upload(api, "/api/upload/image", await tokens(BUYER), [("file", "p.jpg", data)])
    assert reply.status == 201, reply.json
    body = reply.json
    assert (body["width"], body["height"]) == (1200, 800)
    assert body["file_format"] == "JPEG"
    served = await fetch(http_client, base_url + local_path(body["image_url"]))
    assert served.code == 200 and served.headers["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(served.body))
    assert image.size == (1200, 800) and not image.getexif()
    thumb = await fetch(http_client, base_url + local_path(body["thumbnail_url"]))
    assert thumb.code == 200 and max(Image.open(io.BytesIO(thumb.body)).size) == 512
    record = await services.db.files.find_one({"_id": ObjectId(body["file_id"])})
    assert record["kind"] == "image" and record["url"] == body["image_url"]


@pytest.mark.gen_test(timeout=60)
async def test_image_route_refuses_models_and_broken_images(api, tokens, services):
    token = await tokens(BUYER)
    before = stored_objects(services)
    reply = await upload(api, "/api/upload/image", token, [("file", "x.png", mesh_bytes("glb"))])
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_FILE_TYPE"
    truncated = image_bytes(fmt="PNG")[:60]
    reply = await upload(api, "/api/upload/image", token, [("file", "x.png", truncated)])
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_FILE_TYPE"
    await nothing_stored(services, before)


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("path", ["/api/upload/avatar", "/api/users/me/avatar"])
async def test_avatar_is_256_square_and_saved_on_the_user(api, tokens, services, http_client,
                                                           base_url, path):
    token = await tokens(BUYER)
    first = await upload(api, path, token, [("avatar", "me.png",
                                              image_bytes((900, 500), fmt="PNG"))])
    assert first.status == 200, first.json
    reply = await upload(api, path, token, [("file", "me.jpg", image_bytes((300, 700)))])
    assert reply.status == 200
    served = await fetch(http_client, base_url + local_path(reply.json["avatar_url"]))
    assert served.code == 200
    assert Image.open(io.BytesIO(served.body)).size == (256, 256)
    me = await api("GET", "/api/users/me", token=token)
    assert me.json["avatar_url"] == reply.json["avatar_url"]
    avatars = await services.db.files.find({"kind": "avatar"}).to_list(10)
    assert [str(a["_id"]) for a in avatars] == [reply.json["file_id"]]
    old = await fetch(http_client, base_url + local_path(first.json["avatar_url"]))
    assert old.code == 404


# --------------------------------------------------------------------------- other files

@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("path,name,data,fmt", [
    ("/api/upload/attachment", "log.txt", "héllo\nworld\n".encode(), "TXT"),
    ("/api/upload/attachment", "shot.gif", None, "GIF"),
    ("/api/upload/document", "spec.pdf", b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n", "PDF"),
    ("/api/upload/document", "bundle.zip", b"PK\x05\x06" + b"\x00" * 18, "ZIP"),
])
async def test_attachments_and_documents_are_private(api, tokens, http_client, base_url,
                                                     path, name, data, fmt):
    if data is None:
        data = image_bytes((20, 20), fmt="GIF")
    reply = await upload(api, path, await tokens(BUYER), [("file", name, data)])
    assert reply.status == 201, reply.json
    assert reply.json["file_format"] == fmt and reply.json["original_name"] == name
    served = await fetch(http_client, base_url + local_path(reply.json["url"]))
    assert served.code == 200 and served.body == data
    unsigned = await fetch(http_client, base_url + urlparse(reply.json["url"]).path)
    assert unsigned.code == 403


@pytest.mark.gen_test(timeout=60)
async def test_documents_refuse_images_and_binaries(api, tokens, services):
    token = await tokens(BUYER)
    reply = await upload(api, "/api/upload/document", token, [("file", "a.pdf", image_bytes())])
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_FILE_TYPE"
    reply = await upload(api, "/api/upload/attachment", token,
                         [("file", "a.exe", b"MZ\x90\x00" + bytes(range(256)))])
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_FILE_TYPE"
    assert await services.db.files.count_documents({}) == 0


# --------------------------------------------------------------------------- signed URLs

@pytest.mark.gen_test(timeout=60)
async def test_signed_urls_valid_tampered_expired(api, tokens, services, http_client, base_url):
    reply = await upload(api, "/api/upload/model", await tokens(CREATOR),
                         [("file", "a.glb", mesh_bytes("glb"))])
    url = urlparse(reply.json["file_url"])
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    ok = await fetch(http_client, f"{base_url}{url.path}?{url.query}")
    assert ok.code == 200 and ok.headers["Content-Type"] == "model/gltf-binary"
    tampered = dict(params, signature=params["signature"][:-1] + "0"
                    if params["signature"][-1] != "0" else params["signature"][:-1] + "1")
    bad = await fetch(http_client, f"{base_url}{url.path}?{urlencode(tampered)}")
    assert bad.code == 403 and json.loads(bad.body)["error_code"] == "INVALID_SIGNATURE"
    longer = dict(params, expires=str(int(params["expires"]) + 3600))
    assert (await fetch(http_client, f"{base_url}{url.path}?{urlencode(longer)}")).code == 403
    key = url.path.removeprefix("/files/")
    past = int(time.time()) - 5
    expired = {"expires": past, "signature": services.storage.signature(key, past)}
    assert (await fetch(http_client, f"{base_url}{url.path}?{urlencode(expired)}")).code == 403
    other_key = "models/" + "0" * 32 + ".glb"
    moved = f"{base_url}/files/{other_key}?{url.query}"
    assert (await fetch(http_client, moved)).code == 403


@pytest.mark.gen_test(timeout=60)
async def test_files_route_blocks_traversal_and_unknown_keys(http_client, base_url, services):
    outside = Path(services.settings.data_dir) / "secret.txt"
    outside.write_text("top secret")
    for path in ("/files/images/../../secret.txt", "/files/images/%2e%2e/%2e%2e/secret.txt",
                 "/files/images/..%2f..%2fsecret.txt", "/files/%2fetc%2fpasswd",
                 "/files/images/nope.png", "/files/images/"):
        request = HTTPRequest(base_url + path, allow_nonstandard_methods=True)
        reply = await http_client.fetch(request, raise_error=False)
        assert reply.code in (403, 404), path
        assert b"top secret" not in (reply.body or b"")


# --------------------------------------------------------------------------- delete

@pytest.mark.gen_test(timeout=60)
async def test_delete_rules(api, tokens, services):
    owner = await tokens(BUYER)
    reply = await upload(api, "/api/upload/image", owner, [("file", "p.png",
                                                           image_bytes(fmt="PNG"))])
    file_id = reply.json["file_id"]
    record = await services.db.files.find_one({"_id": ObjectId(file_id)})
    other = await api("DELETE", f"/api/upload/{file_id}", token=await tokens(CREATOR2))
    assert other.status == 403 and other.json["error_code"] == "FORBIDDEN"
    assert (await api("DELETE", f"/api/upload/{file_id}")).status == 401
    assert (await api("DELETE", "/api/upload/not-an-id", token=owner)).status == 404
    missing = await api("DELETE", f"/api/upload/{ObjectId()}", token=owner)
    assert missing.status == 404
    assert (await api("DELETE", f"/api/upload/{file_id}", token=owner)).status == 204
    assert await services.db.files.count_documents({}) == 0
    assert not await services.storage.exists(record["key"])
    assert not await services.storage.exists(record["thumbnail_key"])
    assert (await api("DELETE", f"/api/upload/{file_id}", token=owner)).status == 404


@pytest.mark.gen_test(timeout=60)
async def test_staff_may_delete_and_avatar_is_cleared(api, tokens, services):
    token = await tokens(BUYER)
    reply = await upload(api, "/api/upload/avatar", token, [("file", "a.png",
                                                             image_bytes(fmt="PNG"))])
    file_id = reply.json["file_id"]
    assert (await api("DELETE", f"/api/upload/{file_id}", token=await tokens(ADMIN))).status == 204
    me = await api("GET", "/api/users/me", token=token)
    assert me.json["avatar_url"] is None


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("path", ["/api/upload/model", "/api/upload/model-file",
                                  "/api/upload/image", "/api/upload/avatar",
                                  "/api/upload/attachment", "/api/upload/document",
                                  "/api/users/me/avatar", "/api/models/analyze",
                                  "/api/models/upload"])
async def test_uploads_need_auth(api, path, services):
    reply = await upload(api, path, None, [("file", "a.glb", mesh_bytes("glb"))])
    assert reply.status == 401 and reply.json["error_code"] == "UNAUTHORIZED"
    bad = await upload(api, path, "not-a-token", [("file", "a.glb", mesh_bytes("glb"))])
    assert bad.status == 401
    assert await services.db.files.count_documents({}) == 0


# --------------------------------------------------------------------------- model creation


async def _category(services) -> str:
    return (await services.db.categories.find_one({"is_active": True}))["name"]


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("path", ["/api/models/upload", "/api/models"])
async def test_creator_creates_a_model_with_files(api, tokens, services, http_client, base_url,
                                                  path):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    fields = dict(MODEL_FIELDS, category=await _category(services))
    files = [("file", "pack.glb", mesh_bytes("glb", mesh)),
             ("thumbnail", "t.jpg", image_bytes((1600, 1000))),
             ("preview_images", "p1.png", image_bytes(fmt="PNG")),
             ("preview_images", "p2.webp", image_bytes(fmt="WEBP"))]
    reply = await upload(api, path, await tokens(CREATOR), files, fields)
    assert reply.status == 201, reply.json
    model = reply.json
    assert model["status"] == "pending" and model["price"] == 29.99
    assert model["poly_count"] == len(mesh.faces) and model["file_format"] == "GLB"
    assert model["tags"] == ["sphere", "low-poly"]
    assert len(model["preview_images"]) == 2
    thumb = await fetch(http_client, base_url + local_path(model["thumbnail_url"]))
    assert thumb.code == 200 and max(Image.open(io.BytesIO(thumb.body)).size) <= 1600
    stored = await services.db.models.find_one({"_id": ObjectId(model["id"])})
    assert stored["file_key"].startswith("models/") and stored["analyzed"] is True
    kinds = sorted([f["kind"] async for f in services.db.files.find({})])
    assert kinds == ["image", "image", "model", "thumbnail"]
    in_use = await api("DELETE", f"/api/upload/{stored['file_id']}", token=await tokens(CREATOR))
    assert in_use.status == 409 and in_use.json["error_code"] == "FILE_IN_USE"


@pytest.mark.gen_test(timeout=60)
async def test_buyers_cannot_create_models(api, tokens, services):
    before = stored_objects(services)
    fields = dict(MODEL_FIELDS, category=await _category(services))
    reply = await upload(api, "/api/models/upload", await tokens(BUYER),
                         [("file", "a.glb", mesh_bytes("glb"))], fields)
    assert reply.status == 403
    await nothing_stored(services, before)


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("change,field", [
    ({"price": "abc"}, "price"),
    ({"title": ""}, "title"),
    ({"category": "No Such Category"}, "category"),
    ({"colour": "red"}, "colour"),
    ({"price": "0", "is_free": "false"}, "price"),
])
async def test_model_creation_bad_fields_store_nothing(api, tokens, services, change, field):
    before = stored_objects(services)
    models_before = await services.db.models.count_documents({})
    fields = dict(MODEL_FIELDS, category=await _category(services))
    fields.update(change)
    reply = await upload(api, "/api/models/upload", await tokens(CREATOR),
                         [("file", "a.glb", mesh_bytes("glb"))], fields)
    assert reply.status == 422, reply.json
    assert field in reply.json["field_errors"]
    await nothing_stored(services, before)
    assert await services.db.models.count_documents({}) == models_before


@pytest.mark.gen_test(timeout=60)
async def test_model_creation_with_a_bad_preview_removes_the_stored_model_file(api, tokens,
                                                                              services):
    before = stored_objects(services)
    models_before = await services.db.models.count_documents({})
    fields = dict(MODEL_FIELDS, category=await _category(services))
    files = [("file", "a.glb", mesh_bytes("glb")), ("thumbnail", "t.png", image_bytes()),
             ("preview_images", "p.png", b"%PDF-1.4 not an image")]
    reply = await upload(api, "/api/models/upload", await tokens(CREATOR), files, fields)
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_FILE_TYPE"
    await nothing_stored(services, before)
    assert await services.db.models.count_documents({}) == models_before


@pytest.mark.gen_test(timeout=60)
async def test_model_creation_needs_a_file_and_at_most_eight_previews(api, tokens, services):
    token = await tokens(CREATOR)
    fields = dict(MODEL_FIELDS, category=await _category(services))
    reply = await upload(api, "/api/models/upload", token, [], fields)
    assert reply.status == 422 and "file" in reply.json["field_errors"]
    previews = [("preview_images", f"p{i}.png", image_bytes((8, 8), fmt="PNG"))
                for i in range(9)]
    reply = await upload(api, "/api/models/upload", token,
                         [("file", "a.glb", mesh_bytes("glb"))] + previews, fields)
    assert reply.status == 422 and "preview_images" in reply.json["field_errors"]
    assert temp_files(services) == []
    assert await services.db.files.count_documents({}) == 0


@pytest.mark.gen_test(timeout=30)
async def test_an_aborted_upload_leaves_no_temp_file(http_client, base_url, tokens, services):
    assert http_client is not None  # (this fixture starts the server)
    body, headers = multipart(files=[("file", "a.glb", b"glTF" + bytes(2_000_000))])
    port = int(urlparse(base_url).port)
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST /api/upload/model HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {await tokens(CREATOR)}\r\n"
            f"Content-Type: {headers['Content-Type']}\r\nContent-Length: {len(body)}\r\n\r\n")
    writer.write(head.encode() + body[:500_000])
    await writer.drain()
    deadline = time.monotonic() + 10
    while not temp_files(services) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert temp_files(services), "the upload was being spooled"
    writer.close()
    while temp_files(services) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert temp_files(services) == []
    assert await services.db.files.count_documents({}) == 0
