"""Screenshots and recorded videos of a model (seed 001 §4): owner only, streamed multipart,
type by content, size limits, nothing stored on a refusal."""
from __future__ import annotations

import io
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from bson import ObjectId
from demo_accounts import BUYER, CREATOR, CREATOR2, CREATOR_ID, PENDING_OF_CREATOR, ROBOT, SNOWMAN
from PIL import Image

REJECTED = "652000000000000000000043"     # rejected + unpublished, by creator2
IMAGE_LIMIT = 60_000
VIDEO_LIMIT = 120_000

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 2000
WEBM = (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
        b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02" + b"\x00" * 2000)


@pytest.fixture
def settings_overrides():
    return {"max_image_bytes": IMAGE_LIMIT, "max_model_bytes": VIDEO_LIMIT}


def multipart(fields: dict | None = None, files: list | None = None) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in (fields or {}).items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                  f"{value}\r\n".encode())
    for name, filename, data in files or []:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                  f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                  .encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def upload(api, path: str, token: str | None, files: list, fields: dict | None = None):
    body, headers = multipart(fields, files)
    return await api("POST", path, token=token, headers=headers, body=body, timeout=60)


def png(size=(320, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 120, 200)).save(out, "PNG")
    return out.getvalue()


def stored_objects(services) -> set[str]:
    root = Path(services.storage.root)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def temp_files(services) -> list[Path]:
    tmp = Path(services.settings.data_dir) / "tmp"
    return list(tmp.iterdir()) if tmp.is_dir() else []


async def nothing_stored(services, before: set[str]) -> None:
    assert stored_objects(services) == before
    assert await services.db.model_media.count_documents({}) == 0
    assert temp_files(services) == []


@pytest.mark.gen_test
async def test_screenshot_set_as_thumbnail(api, tokens, services):
    token = await tokens(CREATOR)
    reply = await upload(api, f"/api/models/{ROBOT}/screenshot", token,
                         [("file", "shot.png", png())], {"set_as_thumbnail": "true"})
    assert reply.status == 201, reply.json
    media = reply.json
    assert media["kind"] == "screenshot" and media["model_id"] == ROBOT
    assert media["owner_id"] == CREATOR_ID and media["format"] == "PNG"
    assert (media["width"], media["height"]) == (320, 200)
    assert media["url"].endswith(".png") and "key" not in media
    assert media["model_thumbnail_url"] == media["url"]
    model = await services.db.models.find_one({"_id": ObjectId(ROBOT)})
    assert model["thumbnail_url"] == media["url"]
    stored = await services.db.model_media.find_one({"_id": ObjectId(media["id"])})
    assert stored["file_id"] == ObjectId(media["file_id"])
    assert stored["key"] in stored_objects(services)
    record = await services.db.files.find_one({"_id": stored["file_id"]})
    assert record["kind"] == "image" and record["owner_id"] == ObjectId(CREATOR_ID)
    assert temp_files(services) == []


@pytest.mark.gen_test
async def test_screenshot_without_thumbnail_flag_keeps_the_thumbnail(api, tokens, services):
    before = (await services.db.models.find_one({"_id": ObjectId(ROBOT)}))["thumbnail_url"]
    token = await tokens(CREATOR)
    reply = await upload(api, f"/api/models/{ROBOT}/screenshot", token,
                         [("screenshot", "s.png", png())])
    assert reply.status == 201 and reply.json["model_thumbnail_url"] == before
    assert (await services.db.models.find_one({"_id": ObjectId(ROBOT)}))["thumbnail_url"] == before
    # the owner's pending model works too
    reply = await upload(api, f"/api/models/{PENDING_OF_CREATOR}/screenshot", token,
                         [("file", "s.png", png())])
    assert reply.status == 201


@pytest.mark.gen_test
async def test_screenshot_refusals_store_nothing(api, tokens, services):
    before = stored_objects(services)
    creator = await tokens(CREATOR)
    path = f"/api/models/{ROBOT}/screenshot"
    reply = await upload(api, path, None, [("file", "s.png", png())])
    assert reply.status == 401
    reply = await upload(api, path, await tokens(BUYER), [("file", "s.png", png())])
    assert reply.status == 403 and reply.json["error_code"] == "FORBIDDEN"
    reply = await upload(api, f"/api/models/{SNOWMAN}/screenshot", creator,
                         [("file", "s.png", png())])
    assert reply.status == 403
    for ref in (REJECTED, "ffffffffffffffffffffffff", "bad-id"):
        reply = await upload(api, f"/api/models/{ref}/screenshot", creator,
                             [("file", "s.png", png())])
        assert reply.status == 404, ref
    reply = await upload(api, path, creator, [("file", "s.png", b"just some text, not an image")])
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_FILE_TYPE"
    reply = await upload(api, path, creator, [("file", "v.mp4", MP4)])
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_FILE_TYPE"
    reply = await upload(api, path, creator, [("file", "big.png", b"\x89PNG\r\n\x1a\n" +
                                              b"\x00" * (IMAGE_LIMIT + 10))])
    assert reply.status == 413 and reply.json["error_code"] == "FILE_TOO_LARGE"
    reply = await upload(api, path, creator, [("file", "s.png", png())], {"set_as_thumbnail": "maybe"})
    assert reply.status == 422 and "set_as_thumbnail" in reply.json["field_errors"]
    reply = await upload(api, path, creator, [("file", "s.png", png())], {"caption": "x"})
    assert reply.status == 422
    reply = await upload(api, path, creator, [], {"set_as_thumbnail": "true"})
    assert reply.status == 422 and "file" in reply.json["field_errors"]
    reply = await api("POST", path, token=creator, json={"file": "x"})
    assert reply.status == 400
    await nothing_stored(services, before)


@pytest.mark.gen_test
async def test_record_video(api, tokens, services, http_client, base_url):
    token = await tokens(CREATOR)
    for name, data, fmt in (("clip.mp4", MP4, "MP4"), ("clip.webm", WEBM, "WEBM")):
        reply = await upload(api, f"/api/models/{ROBOT}/record-video", token,
                             [("video", name, data)])
        assert reply.status == 201, reply.json
        assert reply.json["kind"] == "video" and reply.json["format"] == fmt
        assert reply.json["size"] == len(data)
        stored = await services.db.model_media.find_one({"_id": ObjectId(reply.json["id"])})
        assert stored["key"].startswith("videos/") and stored["key"] in stored_objects(services)
        url = urlparse(reply.json["url"])
        fetched = await http_client.fetch(f"{base_url}{url.path}?{url.query}", raise_error=False)
        assert fetched.code == 200 and fetched.body == data
    assert await services.db.model_media.count_documents({"kind": "video"}) == 2


@pytest.mark.gen_test
async def test_record_video_refusals_store_nothing(api, tokens, services):
    before = stored_objects(services)
    creator = await tokens(CREATOR)
    path = f"/api/models/{ROBOT}/record-video"
    assert (await upload(api, path, None, [("file", "v.mp4", MP4)])).status == 401
    reply = await upload(api, path, await tokens(CREATOR2), [("file", "v.mp4", MP4)])
    assert reply.status == 403
    reply = await upload(api, path, creator, [("file", "v.png", png())])
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_FILE_TYPE"
    reply = await upload(api, path, creator, [("file", "big.mp4", MP4 + b"\x00" * VIDEO_LIMIT)])
    assert reply.status == 413 and reply.json["error_code"] == "FILE_TOO_LARGE"
    reply = await upload(api, f"/api/models/{PENDING_OF_CREATOR}/record-video", await tokens(BUYER),
                         [("file", "v.mp4", MP4)])
    assert reply.status == 404
    await nothing_stored(services, before)

