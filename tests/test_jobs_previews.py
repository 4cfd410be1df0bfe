"""Model previews built by the job queue (README "Background jobs", docs/architecture.md §7):
an upload's preview arrives through a `build_preview` job on Redis (processing → ready, the
GLB served); a preview that cannot be built is retried and then shown as failed, with the
job listed as a dead letter; a build whose worker died mid-job is swept and built by another
instance; a preview left "processing" whose job is gone is built by the periodic reclaim."""
from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import conftest  # the module pytest loaded: its test_settings() names the test's store
import pytest
from bson import ObjectId
from demo_accounts import ADMIN, CREATOR
from saq.job import Status
from tornado.httpclient import HTTPRequest

from documents import sessions, users
from documents.common import utcnow
from tests.instances import start_instance, stop_instance
from tests.job_support import icosphere_glb, instance_api, metric, upload_model, wait_model


class TestOnRedis:
    @pytest.fixture
    def settings_overrides(self, own_redis):
        return {"redis_url": own_redis.url}

    @pytest.mark.gen_test(timeout=180)
    async def test_uploaded_models_preview_arrives_through_the_queue(self, api, tokens,
                                                                     http_client, base_url):
        token = await tokens(CREATOR)
        uploaded, model = await upload_model(api, token, icosphere_glb())
        assert uploaded["preview_status"] == "processing"
        assert model["preview_status"] in ("processing", "ready")
        model = await wait_model(api, model["id"], token,
                                 lambda m: m["preview_status"] != "processing")
        assert model["preview_status"] == "ready", model
        assert model["file_url"] == model["preview_url"] and model["thumbnail_auto"] is True
        served = await http_client.fetch(HTTPRequest(
            base_url + urlsplit(model["preview_url"]).path, request_timeout=30),
            raise_error=False)
        assert served.code == 200 and served.headers["Content-Type"] == "model/gltf-binary"
        async def counted():  # the job's outcome is counted as it ends
            page = (await http_client.fetch(base_url + "/metrics")).body.decode()
            done = 'hwc3d_jobs_total{function="build_preview",outcome="complete"}'
            return page if metric(page, done) == 1.0 else None
        page = await conftest.eventually(counted, what="the finished preview job")
        assert metric(page, 'hwc3d_jobs_enqueued_total{function="build_preview"}') == 1.0


# a glTF whose buffer lives in a file that was not uploaded: accepted and analysed from its
# JSON, but there is nothing to convert, so every build of its preview fails
BROKEN_GLTF = json.dumps({
    "asset": {"version": "2.0"}, "buffers": [{"uri": "missing.bin", "byteLength": 36}],
    "bufferViews": [{"buffer": 0, "byteLength": 36}],
    "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                   "min": [0, 0, 0], "max": [1, 1, 0]}],
    "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
    "nodes": [{"mesh": 0}], "scenes": [{"nodes": [0]}], "scene": 0}).encode()


@pytest.mark.gen_test(timeout=180)
@pytest.mark.parametrize("settings_overrides", [{"preview_retries": 3}])
async def test_a_failing_preview_is_retried_then_shown_as_failed(api, tokens, http_client,
                                                                 base_url):
    token = await tokens(CREATOR)
    uploaded, model = await upload_model(api, token, BROKEN_GLTF, name="tri.gltf")
    model = await wait_model(api, model["id"], token,
                             lambda m: m["preview_status"] != "processing")
    assert model["preview_status"] == "failed"
    assert model["preview_url"] is None and model["file_url"] is None
    admin = await tokens(ADMIN)

    async def dead_letters():
        reply = await api("GET", "/api/admin/jobs", token=admin)
        assert reply.status == 200, reply.json
        return [d for d in reply.json["dead_letters"] if d["function"] == "build_preview"]
    [letter] = await conftest.eventually(dead_letters, what="the preview job's dead letter")
    assert letter["attempts"] == 3 and "PreviewFailed" in letter["error"]
    assert letter["kwargs"]["file_id"] == uploaded["file_id"]
    page = (await http_client.fetch(base_url + "/metrics")).body.decode()
    assert metric(page, 'hwc3d_jobs_total{function="build_preview",outcome="retried"}') == 2.0
    assert metric(page, 'hwc3d_jobs_total{function="build_preview",outcome="failed"}') == 1.0


@pytest.mark.store
@pytest.mark.gen_test(timeout=120)
async def test_preview_job_whose_worker_died_is_built_by_another_instance(tmp_path, own_redis):
    """The first instance enqueues the build, a worker takes it and dies (the job stays
    "active" in Redis and its heartbeat stops); the second instance's sweep runs it again."""
    shared = {"redis_url": own_redis.url, "jobs_sweep_seconds": 1, "jobs_heartbeat_seconds": 1}
    first = await start_instance(conftest.test_settings(tmp_path, jobs_worker=False,
                                                         **shared))
    db, running = first.services.db, [first]
    try:
        creator = await users.get_by_email(db, CREATOR)
        token = (await sessions.start_session(db, first.services.settings, creator))["access_token"]
        _, model = await upload_model(instance_api(first.base_url), token, icosphere_glb(2))
        job = await first.services.jobs.queue.dequeue(timeout=5)  # its worker took it...
        assert job is not None and job.function == "build_preview"
        job.attempts += 1
        await job.update(status=Status.ACTIVE)  # ...and died: no heartbeat from now on
        await stop_instance(running.pop())
        second = await start_instance(conftest.test_settings(tmp_path, **shared), db=db)  # same files
        running.append(second)
        model = await wait_model(instance_api(second.base_url), model["id"], token,
                                 lambda m: m["preview_status"] != "processing")
        assert model["preview_status"] == "ready", model
    finally:
        for instance in running:
            await stop_instance(instance)


class TestReclaim:
    @pytest.fixture
    def settings_overrides(self):
        return {"cron_reclaim": "* * * * * *"}  # every second

    @pytest.mark.gen_test(timeout=180)
    async def test_preview_whose_job_was_lost_is_built_by_the_reclaim_job(self, api, tokens,
                                                                          services):
        token = await tokens(CREATOR)
        uploaded, model = await upload_model(api, token, icosphere_glb(2))
        built = await wait_model(api, model["id"], token,
                                 lambda m: m["preview_status"] != "processing")
        assert built["preview_status"] == "ready"
        # as a process stopped mid-build an hour ago leaves it, with no job left anywhere
        file_id = ObjectId(uploaded["file_id"])
        await services.db.files.update_one({"_id": file_id}, {"$set": {"preview": {
            "preview_status": "processing", "updated_at": utcnow() - timedelta(hours=1)}}})
        await services.db.models.update_one({"file_id": file_id}, {"$set": {
            "preview_status": "processing", "preview_url": None, "file_url": None}})
        rebuilt = await wait_model(api, model["id"], token,
                                   lambda m: m["preview_status"] != "processing")
        assert rebuilt["preview_status"] == "ready"
        assert rebuilt["preview_url"] not in (None, built["preview_url"])
