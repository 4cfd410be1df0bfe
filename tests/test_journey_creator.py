"""The creator's pages of seeds 001/004 played in order over real HTTP: upload a model (two
steps, or one multipart form), see its 3D preview and rendered thumbnail, edit it while it
is listed, and a buyer's download link followed in a browser tab."""
from __future__ import annotations

import io
import json
import time
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pytest
import trimesh
from demo_accounts import ADMIN, BUYER, CREATOR, CREATOR2, ROBOT, SNOWMAN
from PIL import Image
from tornado.httpclient import HTTPRequest

from tests.upload_support import image_bytes, upload


@pytest.fixture
def browser(http_client, base_url):
    """GET a URL the API handed out as a browser tab would: no Authorization header, no
    redirects followed. The server's PUBLIC_URL is the demo default, so the URL's host is
    pointed at this test's server."""
    async def get(url: str, headers: dict | None = None):
        parts = urlsplit(url)
        target = base_url + urlunsplit(("", "", parts.path, parts.query, ""))
        request = HTTPRequest(target, headers=headers or {}, follow_redirects=False,
                              request_timeout=60)
        return await http_client.fetch(request, raise_error=False)

    return get


async def wait_model(api, model_id: str, token: str, done, deadline: float = 120.0) -> dict:
    """Poll GET /api/models/{id} until `done(model)` holds; fails after `deadline` s."""
    end = time.monotonic() + deadline
    while True:
        reply = await api("GET", f"/api/models/{model_id}", token=token)
        assert reply.status == 200, reply.json
        if done(reply.json):
            return reply.json
        assert time.monotonic() < end, reply.json
        await _tick()


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.2)


def icosphere_glb(subdivisions: int = 3) -> tuple[bytes, int]:
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    return mesh.export(file_type="glb"), len(mesh.faces)


async def create_one_shot(api, token: str, data: bytes, name="ball.glb", **fields) -> dict:
    form = {"title": "Preview ball", "description": "An icosphere", "price": "4.99",
            "category": "Abstract", "tags": "ball,sphere", **fields}
    reply = await upload(api, "/api/models", token, [("file", name, data)], form)
    assert reply.status == 201, reply.json
    return reply.json


def glb_faces(body: bytes) -> int:
    scene = trimesh.load(io.BytesIO(body), file_type="glb", force="scene")
    return sum(len(scene.geometry[scene.graph[n][1]].faces) for n in scene.graph.nodes_geometry)


@pytest.mark.gen_test(timeout=180)
async def test_uploaded_model_gets_a_glb_preview_and_a_rendered_thumbnail(api, tokens, browser):
    token = await tokens(CREATOR)
    data, faces = icosphere_glb()
    model = await create_one_shot(api, token, data)
    assert model["preview_status"] in ("processing", "ready")
    assert model["thumbnail_url"] is None or model["thumbnail_auto"] is True
    model = await wait_model(api, model["id"], token,
                             lambda m: m["preview_status"] != "processing")
    assert model["preview_status"] == "ready", model
    assert model["file_url"] == model["preview_url"]
    preview = await browser(model["file_url"])
    assert preview.code == 200
    assert preview.headers["Content-Type"] == "model/gltf-binary"
    assert glb_faces(preview.body) == faces == model["poly_count"]
    assert model["thumbnail_auto"] is True
    shot = await browser(model["thumbnail_url"])
    assert shot.code == 200
    image = Image.open(io.BytesIO(shot.body))
    assert image.size == (640, 480)
    pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert pixels.std() > 8, "the thumbnail is blank"
    sizes = {}
    for name, url in model["thumbnails"].items():
        reply = await browser(url)
        assert reply.code == 200
        sizes[name] = Image.open(io.BytesIO(reply.body)).size
    assert sizes == {"thumbnail": (640, 480), "card": (320, 240), "detail": (1280, 960)}


@pytest.mark.gen_test(timeout=180)
@pytest.mark.parametrize("settings_overrides", [{"preview_max_faces": 500}])
async def test_a_mesh_over_the_face_budget_is_simplified(api, tokens, browser):
    token = await tokens(CREATOR)
    data, faces = icosphere_glb(4)           # 5,120 faces
    model = await create_one_shot(api, token, data, name="dense.glb")
    model = await wait_model(api, model["id"], token,
                             lambda m: m["preview_status"] != "processing")
    assert model["preview_status"] == "ready", model
    served = glb_faces((await browser(model["file_url"])).body)
    assert model["poly_count"] == faces
    assert 300 <= served <= 500


@pytest.mark.gen_test(timeout=180)
async def test_a_creators_own_thumbnail_wins(api, tokens):
    token = await tokens(CREATOR)
    data, _ = icosphere_glb(2)
    form = {"title": "Own thumb", "price": "2.50", "category": "Abstract"}
    reply = await upload(api, "/api/models", token,
                         [("file", "ball.glb", data), ("thumbnail", "t.png",
                                                       image_bytes(fmt="PNG"))], form)
    assert reply.status == 201, reply.json
    own = reply.json["thumbnail_url"]
    model = await wait_model(api, reply.json["id"], token,
                             lambda m: m["preview_status"] != "processing")
    assert model["preview_status"] == "ready"
    assert model["thumbnail_url"] == own and model["thumbnail_auto"] is False


@pytest.mark.gen_test(timeout=180)
async def test_a_failing_preview_leaves_the_model_listed_as_failed(api, tokens):
    token = await tokens(CREATOR)
    # a glTF whose buffer lives in a file that was not uploaded: analysed from its JSON,
    # but there is nothing to convert
    gltf = {"asset": {"version": "2.0"}, "buffers": [{"uri": "missing.bin", "byteLength": 36}],
            "bufferViews": [{"buffer": 0, "byteLength": 36}],
            "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                           "min": [0, 0, 0], "max": [1, 1, 0]}],
            "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
            "nodes": [{"mesh": 0}], "scenes": [{"nodes": [0]}], "scene": 0}
    model = await create_one_shot(api, token, json.dumps(gltf).encode(), name="tri.gltf")
    model = await wait_model(api, model["id"], token,
                             lambda m: m["preview_status"] != "processing")
    assert model["preview_status"] == "failed"
    assert model["file_url"] is None and model["thumbnail_url"] is None
    admin = await tokens(ADMIN)
    reply = await api("PUT", f"/api/admin/models/{model['id']}/approve", token=admin, json={})
    assert reply.status == 200, reply.json
    listed = await api("GET", "/api/models?search=Preview+ball&limit=50")
    assert model["id"] in [m["id"] for m in listed.json["items"]]
    shown = next(m for m in listed.json["items"] if m["id"] == model["id"])
    assert shown["preview_status"] == "failed"


@pytest.mark.gen_test(timeout=60)
async def test_fixture_models_serve_their_previews_at_once(api, browser):
    listed = await api("GET", "/api/models?limit=50")
    assert listed.status == 200
    items = listed.json["items"]
    assert items and all(m["preview_status"] == "ready" for m in items)
    for fmt in ("STL", "OBJ", "GLB"):
        model = next(m for m in items if m["file_format"] == fmt)
        url = model["file_url"]
        reply = await browser(url)
        assert reply.code == 200
        assert glb_faces(reply.body) == model["poly_count"]


# --------------------------------------------------------------------------- upload page

async def upload_model_file(api, token: str, data: bytes, name="ball.glb") -> dict:
    reply = await upload(api, "/api/upload/model", token, [("file", name, data)])
    assert reply.status == 201, reply.json
    return reply.json


async def upload_image(api, token: str, color=(30, 120, 200)) -> dict:
    reply = await upload(api, "/api/upload/image", token,
                         [("file", "shot.png", image_bytes(fmt="PNG", color=color))])
    assert reply.status == 201, reply.json
    return reply.json


@pytest.mark.gen_test(timeout=180)
async def test_two_step_upload_without_thumbnail_gets_preview_and_rendered_thumbnail(
        api, tokens, browser):
    token = await tokens(CREATOR)
    data, faces = icosphere_glb()
    uploaded = await upload_model_file(api, token, data)
    assert uploaded["file_id"] and uploaded["preview_status"] == "processing"
    shot = await upload_image(api, token)
    reply = await api("POST", "/api/models", token=token, json={
        "title": "Two-step ball", "description": "Uploaded in two steps", "price": "3.00",
        "category": "Abstract", "tags": ["ball"], "file_id": uploaded["file_id"],
        "preview_image_ids": [shot["file_id"]]})
    assert reply.status == 201, reply.json
    model = reply.json
    assert model["status"] == "pending" and model["poly_count"] == faces
    assert model["preview_images"] == [shot["image_url"]]
    model = await wait_model(api, model["id"], token,
                             lambda m: m["preview_status"] != "processing"
                             and m["thumbnail_url"] is not None)
    assert model["preview_status"] == "ready" and model["thumbnail_auto"] is True
    assert glb_faces((await browser(model["file_url"])).body) == faces
    image = Image.open(io.BytesIO((await browser(model["thumbnail_url"])).body))
    assert image.size == (640, 480)
    assert np.asarray(image.convert("L"), dtype=np.float32).std() > 8
    # the same upload cannot be attached twice, nor by someone else
    again = await api("POST", "/api/models", token=token, json={
        "title": "Again", "price": "1.00", "category": "Abstract",
        "file_id": uploaded["file_id"]})
    assert again.status == 409 and again.json["error_code"] == "FILE_ALREADY_ATTACHED"
    other = await upload_model_file(api, token, data)
    stranger = await tokens(CREATOR2)
    stolen = await api("POST", "/api/models", token=stranger, json={
        "title": "Not mine", "price": "1.00", "category": "Abstract",
        "file_id": other["file_id"]})
    assert stolen.status == 403 and stolen.json["error_code"] == "FILE_NOT_OWNED"


@pytest.mark.gen_test(timeout=180)
async def test_two_step_upload_by_urls_with_own_thumbnail(api, tokens):
    token = await tokens(CREATOR)
    data, _ = icosphere_glb(2)
    uploaded = await upload_model_file(api, token, data)
    thumb = await upload_image(api, token, color=(200, 200, 20))
    reply = await api("POST", "/api/models", token=token, json={
        "title": "By URL", "price": "2.00", "category": "Abstract",
        "file_url": uploaded["file_url"], "thumbnail_url": thumb["image_url"]})
    assert reply.status == 201, reply.json
    model = await wait_model(api, reply.json["id"], token,
                             lambda m: m["preview_status"] != "processing")
    assert model["thumbnail_url"] == thumb["image_url"] and model["thumbnail_auto"] is False


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("body", [
    {},                                                        # no file
    {"file_id": "nope"},                                      # unknown id
    {"file_id": "65a000000000000000000001"},                  # unknown ObjectId
    {"file_url": "http://x/files/models/none.glb"},           # URL of no upload
    {"file_id": 5},                                           # wrong type
    {"preview_image_ids": "x"},                               # not a list
    {"preview_image_ids": ["a"] * 9},                         # too many
    {"title": "x"},                                           # too short
    {"unknown_field": 1},                                     # strict body
])
async def test_json_model_creation_refuses_bad_input(api, tokens, body):
    token = await tokens(CREATOR)
    base = {"title": "Bad input", "price": "1.00", "category": "Abstract",
            "file_id": "65a000000000000000000001"}
    before = await api("GET", "/api/users/me/models?limit=50", token=token)
    reply = await api("POST", "/api/models", token=token, json={**base, **body}
                      if body else {"title": "No file", "price": "1", "category": "Abstract"})
    assert 400 <= reply.status < 500, reply.json
    assert set(reply.json) >= {"detail", "error_code", "field_errors"}
    after = await api("GET", "/api/users/me/models?limit=50", token=token)
    assert [m["id"] for m in after.json["items"]] == [m["id"] for m in before.json["items"]]


@pytest.mark.gen_test(timeout=60)
async def test_json_model_creation_refuses_malformed_json_and_buyers(api, tokens):
    token = await tokens(CREATOR)
    reply = await api("POST", "/api/models", token=token, body=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_JSON"
    reply = await api("POST", "/api/models", token=token, json=[1, 2])
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_JSON"
    buyer = await tokens(BUYER)
    reply = await api("POST", "/api/models", token=buyer, json={"title": "Nope"})
    assert reply.status == 403


async def _read_response(stream) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 response (with a Content-Length body) read from `stream`."""
    head = (await stream.read_until(b"\r\n\r\n", max_bytes=65536)).decode("latin-1")
    lines = head.strip().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    body = await stream.read_bytes(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers, body


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("path", ["/api/upload/image", "/api/upload/model", "/api/models"])
async def test_a_refused_body_keeps_the_keep_alive_connection_usable(tokens, http_server, http_port,
                                                                  path):
    """Two requests written at once on one raw TCP connection: a form body that a multipart
    route refuses, then GET /healthz; both are answered on that connection."""
    from tornado.tcpclient import TCPClient

    token = await tokens(CREATOR)
    body = b"title=plain+form&price=1" * 40
    first = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
             f"Content-Type: application/x-www-form-urlencoded\r\n"
             f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    second = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    stream = await TCPClient().connect("127.0.0.1", http_port)
    try:
        await stream.write(first + second)
        status, headers, payload = await _read_response(stream)
        assert status == 400, payload
        assert json.loads(payload)["error_code"]
        assert headers.get("connection", "").lower() != "close"
        status, _, payload = await _read_response(stream)
        assert status == 200, payload
    finally:
        stream.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_reply_before_the_body_is_read_says_connection_close(http_server, http_port):
    """Refused before its body is read (no token): the reply closes the connection and
    says so, so a client opens a new one for its next request."""
    from tornado.tcpclient import TCPClient

    body = b"x" * 4096
    request = (f"POST /api/upload/image HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Content-Type: multipart/form-data; boundary=zz\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    stream = await TCPClient().connect("127.0.0.1", http_port)
    try:
        await stream.write(request)
        status, headers, _ = await _read_response(stream)
        assert status == 401
        assert headers.get("connection", "").lower() == "close"
    finally:
        stream.close()


# --------------------------------------------------------------------------- downloads



async def model_downloads(api, model_id: str) -> int:
    return (await api("GET", f"/api/models/{model_id}")).json["downloads"]


@pytest.mark.gen_test(timeout=120)
async def test_checkout_download_link_opens_in_a_tab_and_counts_once(api, tokens, browser):
    buyer = await tokens(BUYER)
    before = await model_downloads(api, ROBOT)
    order = await api("POST", "/api/checkout", token=buyer, json={
        "model_ids": [ROBOT], "payment_details": {"card_token": "tok_visa"}})
    assert order.status == 200, order.json
    link = order.json["purchases"][0]["download_url"]
    listed = await api("GET", "/api/purchases", token=buyer)
    assert listed.json["items"][0]["download_url"]
    one = await api("GET", f"/api/purchases/{ROBOT}/download", token=buyer)
    assert one.status == 200 and one.json["download_count"] == 0
    assert await model_downloads(api, ROBOT) == before          # listing counts nothing
    opened = await browser(link)                               # no Authorization header
    assert opened.code == 302
    stored = await browser(opened.headers["Location"])
    assert stored.code == 200 and stored.body[:4] == b"glTF"
    assert stored.headers["Content-Disposition"].startswith("attachment")
    etag = stored.headers["ETag"]
    assert (await browser(opened.headers["Location"], {"If-None-Match": etag})).code == 304
    part = await browser(opened.headers["Location"], {"Range": "bytes=0-11"})
    assert part.code == 206 and part.body == stored.body[:12]
    assert part.headers["Content-Range"] == f"bytes 0-11/{len(stored.body)}"
    again = await browser(link)                                # the same link, followed again
    assert again.code == 302
    assert await model_downloads(api, ROBOT) == before + 1
    state = await api("GET", f"/api/purchases/{ROBOT}/download", token=buyer)
    assert state.json["download_count"] == 1 and state.json["remaining_downloads"] == 9
    outside = await browser(opened.headers["Location"], {"Range": "bytes=999999999-"})
    assert outside.code == 416


@pytest.mark.gen_test(timeout=120)
async def test_original_files_free_for_signed_in_users_private_when_paid(api, tokens, browser):
    buyer = await tokens(BUYER)
    assert (await api("GET", f"/api/models/{SNOWMAN}/download")).status == 401
    before = await model_downloads(api, SNOWMAN)
    free = await api("GET", f"/api/models/{SNOWMAN}/download", token=buyer)
    assert free.status == 200, free.json
    opened = await browser(free.json["download_url"])
    assert opened.code == 302
    assert (await browser(opened.headers["Location"])).code == 200
    await browser(free.json["download_url"])
    assert await model_downloads(api, SNOWMAN) == before + 1
    paid = await api("GET", f"/api/models/{ROBOT}/download", token=buyer)
    assert paid.status == 403 and paid.json["error_code"] == "NOT_PURCHASED"
    owner = await api("GET", f"/api/models/{ROBOT}/download", token=await tokens(CREATOR))
    assert owner.status == 200
    robot_before = await model_downloads(api, ROBOT)
    assert (await browser(owner.json["download_url"])).code == 302
    assert await model_downloads(api, ROBOT) == robot_before   # the creator's own: not counted
    # the model page never exposes the original
    page = (await api("GET", f"/api/models/{ROBOT}", token=buyer)).json
    assert "file_key" not in page and page["file_url"] == page["preview_url"]
    assert "/previews/" in page["file_url"]
    bad = await browser(free.json["download_url"][:-6] + "AAAAAA")
    assert bad.code == 403
    assert json.loads(bad.body)["error_code"] == "DOWNLOAD_LINK_INVALID"
    assert (await api("GET", "/api/models/nope/download", token=buyer)).status == 404


# --------------------------------------------------------------------------- inventory edits

async def listed_ids(api, search: str) -> list[str]:
    reply = await api("GET", f"/api/models?search={search}&limit=50")
    assert reply.status == 200
    return [m["id"] for m in reply.json["items"]]


@pytest.mark.gen_test(timeout=240)
async def test_editing_a_listed_model_keeps_it_listed_and_reviews_a_new_file(api, tokens,
                                                                            browser):
    token, admin = await tokens(CREATOR), await tokens(ADMIN)
    data, faces = icosphere_glb(2)
    uploaded = await upload_model_file(api, token, data)
    created = await api("POST", "/api/models", token=token, json={
        "title": "Listed ball", "price": "5.00", "category": "Abstract",
        "file_id": uploaded["file_id"]})
    assert created.status == 201, created.json
    model_id = created.json["id"]
    approved = await api("PUT", f"/api/admin/models/{model_id}/approve", token=admin, json={})
    assert approved.status == 200
    assert model_id in await listed_ids(api, "Listed+ball")
    live = await wait_model(api, model_id, token, lambda m: m["preview_status"] == "ready")

    # price, title, description, tags, category and images change at once, still listed
    shot = await upload_image(api, token)
    edit = await api("PUT", f"/api/models/{model_id}", token=token, json={
        "title": "Listed ball, edited", "price": "7.50", "description": "Now shinier",
        "tags": ["ball", "shiny"], "category": "Characters",
        "preview_image_ids": [shot["file_id"]]})
    assert edit.status == 200, edit.json
    assert edit.json["status"] == "approved" and edit.json["under_review"] == []
    assert edit.json["price"] == 7.5 and edit.json["preview_images"] == [shot["image_url"]]
    assert model_id in await listed_ids(api, "Listed+ball")
    public = (await api("GET", f"/api/models/{model_id}")).json
    assert public["title"] == "Listed ball, edited" and public["category"] == "Characters"

    # a new model file waits for review; the approved file stays live
    dense, dense_faces = icosphere_glb(3)
    second = await upload_model_file(api, token, dense, name="dense.glb")
    replaced = await api("PUT", f"/api/models/{model_id}", token=token,
                         json={"file_id": second["file_id"]})
    assert replaced.status == 200, replaced.json
    assert replaced.json["under_review"] == ["file"]
    assert replaced.json["status"] == "approved"
    assert replaced.json["pending_file"]["poly_count"] == dense_faces
    assert model_id in await listed_ids(api, "Listed+ball")
    public = (await api("GET", f"/api/models/{model_id}")).json
    assert public["poly_count"] == faces and public["file_url"] == live["file_url"]
    assert "pending_file" not in public
    # staff approve the new file: it goes live with its own preview
    await wait_model(api, model_id, token,
                     lambda m: m["pending_file"]["preview_status"] == "ready")
    approved = await api("PUT", f"/api/admin/models/{model_id}/approve", token=admin, json={})
    assert approved.status == 200, approved.json
    public = (await api("GET", f"/api/models/{model_id}")).json
    assert public["poly_count"] == dense_faces and public["file_url"] != live["file_url"]
    assert glb_faces((await browser(public["file_url"])).body) == dense_faces
    assert model_id in await listed_ids(api, "Listed+ball")

    # staff can still take it off the marketplace
    off = await api("POST", f"/api/models/{model_id}/toggle-publish", token=admin)
    assert off.status == 200 and off.json["is_published"] is False
    assert model_id not in await listed_ids(api, "Listed+ball")


@pytest.mark.gen_test(timeout=120)
async def test_a_rejected_new_file_leaves_the_live_one(api, tokens):
    token, admin = await tokens(CREATOR), await tokens(ADMIN)
    robot = await api("GET", f"/api/models/{ROBOT}", token=token)
    data, _ = icosphere_glb(1)
    uploaded = await upload_model_file(api, token, data)
    replaced = await api("PUT", f"/api/models/{ROBOT}", token=token,
                         json={"file_url": uploaded["file_url"]})
    assert replaced.status == 200 and replaced.json["under_review"] == ["file"]
    rejected = await api("PUT", f"/api/admin/models/{ROBOT}/reject", token=admin,
                         json={"reason": "The new file is broken"})
    assert rejected.status == 200, rejected.json
    assert rejected.json["status"] == "approved" and "pending_file" not in rejected.json
    assert rejected.json["file_rejection_reason"] == "The new file is broken"
    after = (await api("GET", f"/api/models/{ROBOT}", token=token)).json
    assert after["file_key"] == robot.json["file_key"]


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("body, status", [
    ({"file_id": "nope"}, 422),
    ({"file_id": 7}, 422),
    ({"thumbnail_id": "65a000000000000000000001"}, 422),
    ({"preview_image_ids": "x"}, 422),
    ({"preview_images": ["http://x/none.png"]}, 422),
    ({"price": "-1"}, 422),
    ({"bogus": True}, 422),
])
async def test_edit_refuses_bad_input(api, tokens, body, status):
    token = await tokens(CREATOR)
    before = (await api("GET", f"/api/models/{ROBOT}", token=token)).json
    reply = await api("PUT", f"/api/models/{ROBOT}", token=token, json=body)
    assert reply.status == status, reply.json
    assert set(reply.json) >= {"detail", "error_code", "field_errors"}
    after = (await api("GET", f"/api/models/{ROBOT}", token=token)).json
    assert after["updated_at"] == before["updated_at"]


@pytest.mark.gen_test(timeout=60)
async def test_edit_cannot_attach_someone_elses_upload(api, tokens):
    other = await tokens(CREATOR2)
    data, _ = icosphere_glb(1)
    theirs = await upload_model_file(api, other, data)
    reply = await api("PUT", f"/api/models/{ROBOT}", token=await tokens(CREATOR),
                      json={"file_id": theirs["file_id"]})
    assert reply.status == 403 and reply.json["error_code"] == "FILE_NOT_OWNED"
