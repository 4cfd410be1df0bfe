"""Storage backends (docs/architecture.md §7): S3 through moto's server (put, get, presign, multipart,
delete, bucket creation), uploads through the app on S3, and the local backend's keys."""
from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from demo_accounts import BUYER, CREATOR, ROBOT
from tornado.httpclient import AsyncHTTPClient
from upload_support import image_bytes, mesh_bytes, upload

from config import load_settings
from storage.local import LocalStorage
from storage.s3 import MULTIPART_THRESHOLD, S3Storage


def s3_overrides(moto_url: str, bucket: str) -> dict:
    return {"s3_bucket_name": bucket, "s3_access_key": "testing", "s3_secret_key": "testing",
            "s3_endpoint_url": moto_url}


def s3_settings(tmp_path: Path, moto_url: str, bucket: str):
    return load_settings(environ={}, dotenv_path=None, data_dir=tmp_path,
                         **s3_overrides(moto_url, bucket))


@pytest.mark.gen_test(timeout=60)
async def test_s3_put_get_presign_delete(moto_url, tmp_path):
    storage = S3Storage(s3_settings(tmp_path, moto_url, "hwc3d-basic"))
    await storage.open()  # creates the missing bucket
    try:
        assert await storage.ping()
        assert await storage.put_bytes("images/a.png", b"png-bytes", "image/png") == 9
        assert await storage.get_bytes("images/a.png") == b"png-bytes"
        assert await storage.exists("images/a.png")
        assert storage.public_url("images/a.png") == f"{moto_url}/hwc3d-basic/images/a.png"
        url = await storage.signed_url("images/a.png", 60, filename="a.png")
        assert "X-Amz-Signature=" in url and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
        reply = await AsyncHTTPClient().fetch(url, raise_error=False)
        assert reply.code == 200 and reply.body == b"png-bytes"
        assert "a.png" in reply.headers.get("Content-Disposition", "")
        # (moto's server does not check signatures unless IAM auth is on: no tamper case here)
        await storage.delete("images/a.png")
        assert not await storage.exists("images/a.png")
        with pytest.raises(FileNotFoundError):
            await storage.get_bytes("images/a.png")
        await storage.delete("images/a.png")  # already gone: no error
    finally:
        await storage.close()


@pytest.mark.gen_test(timeout=120)
async def test_s3_large_file_goes_up_in_parts_and_streams_down(moto_url, tmp_path):
    storage = S3Storage(s3_settings(tmp_path, moto_url, "hwc3d-large"))
    await storage.open()
    try:
        source = tmp_path / "big.bin"
        data = os.urandom(MULTIPART_THRESHOLD + 3 * 1024 * 1024)
        source.write_bytes(data)
        assert await storage.move_file("models/big.glb", source, "model/gltf-binary") == len(data)
        assert not source.exists()
        target = tmp_path / "back.bin"
        await storage.download_to("models/big.glb", target)
        assert target.read_bytes() == data
        with pytest.raises(FileNotFoundError):
            await storage.download_to("models/none.glb", tmp_path / "none.bin")
    finally:
        await storage.close()


class TestUploadsOnS3:
    @pytest.fixture
    def settings_overrides(self, moto_url):
        return s3_overrides(moto_url, "hwc3d-app")

    @pytest.mark.gen_test(timeout=60)
    async def test_model_and_image_uploads_land_in_the_bucket(self, api, tokens, services,
                                                              moto_url):
        assert isinstance(services.storage, S3Storage)
        token = await tokens(CREATOR)
        data = mesh_bytes("glb")
        reply = await upload(api, "/api/upload/model", token, [("file", "a.glb", data)])
        assert reply.status == 201, reply.json
        assert reply.json["poly_count"] == 1280
        file_url = reply.json["file_url"]
        assert file_url.startswith(moto_url) and "X-Amz-Signature" in file_url
        fetched = await AsyncHTTPClient().fetch(file_url, raise_error=False)
        assert fetched.code == 200 and fetched.body == data
        image = await upload(api, "/api/upload/image", token, [("file", "p.png",
                                                                image_bytes(fmt="PNG"))])
        assert image.status == 201
        assert image.json["image_url"].startswith(f"{moto_url}/hwc3d-app/images/")
        file_id = reply.json["file_id"]
        record = await services.db.files.find_one({"kind": "model"})
        assert (await api("DELETE", f"/api/upload/{file_id}", token=token)).status == 204
        assert not await services.storage.exists(record["key"])

    @pytest.mark.gen_test(timeout=60)
    async def test_files_route_is_404_on_s3(self, api):
        reply = await api("GET", "/files/images/x.png")
        assert reply.status == 404


def test_local_keys_stay_inside_the_root(tmp_path):
    storage = LocalStorage(tmp_path / "files", load_settings(environ={}, dotenv_path=None))
    assert storage.path_of("models/a.glb") == (tmp_path / "files" / "models" / "a.glb").resolve()
    for key in ("../x", "models/../../x", "/etc/passwd", "a/../../../etc"):
        with pytest.raises(ValueError):
            storage.path_of(key)


def test_local_signatures_bind_key_and_expiry(tmp_path):
    storage = LocalStorage(tmp_path / "files", load_settings(environ={}, dotenv_path=None))
    expires = int(time.time()) + 60
    signature = storage.signature("models/a.glb", expires)
    assert storage.verify("models/a.glb", str(expires), signature)
    assert not storage.verify("models/b.glb", str(expires), signature)
    assert not storage.verify("models/a.glb", str(expires + 1), signature)
    assert not storage.verify("models/a.glb", None, signature)
    past = int(time.time()) - 1
    assert not storage.verify("models/a.glb", str(past), storage.signature("models/a.glb", past))

    @pytest.mark.gen_test(timeout=60)
    async def test_purchase_download_is_an_s3_presigned_url(self, api, tokens, services,
                                                            moto_url):
        """On S3 a followed download link redirects to a presigned URL that expires in
        minutes and serves the bought file as an attachment; it counts against the
        purchase once followed."""
        token = await tokens(BUYER)
        bought = await api("POST", "/api/checkout", token=token, json={
            "model_ids": [ROBOT], "payment_details": {"card_token": "tok_visa"}})
        assert bought.status == 200, bought.json
        link = await api("GET", f"/api/purchases/{ROBOT}/download", token=token)
        assert link.status == 200, link.json
        ttl = services.settings.download_url_ttl_minutes * 60
        assert link.json["expires_in"] == ttl and link.json["download_count"] == 0
        parts = urlsplit(link.json["download_url"])
        followed = await api("GET", parts.path)          # no header, as a browser tab
        assert followed.status == 302
        url = followed.headers["Location"]
        assert url.startswith(f"{moto_url}/hwc3d-app/") and "X-Amz-Signature=" in url
        assert "X-Amz-Expires=300" in url and "attachment" in unquote(url)
        fetched = await AsyncHTTPClient().fetch(url, raise_error=False)
        assert fetched.code == 200 and fetched.body[:4] == b"glTF"
        again = await api("GET", f"/api/purchases/{ROBOT}/download", token=token)
        assert again.json["download_count"] == 1 and again.json["remaining_downloads"] == 9
