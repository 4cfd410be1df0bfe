"""Email delivery through the job queue on Redis: a message whose SMTP server is down is
retried with backoff and delivered once when the server is back (aiosmtpd stopped, then
started on the same port); a bulk send goes out over one SMTP connection per batch."""
from __future__ import annotations

import asyncio
import time

import pytest
from aiosmtpd.controller import Controller
from bson import ObjectId
from conftest import free_port
from demo_accounts import ADMIN, BUYER

from tests.mail_support import Inbox, email_status


class CountingInbox(Inbox):
    """Also counts SMTP sessions (connections)."""

    def __init__(self):
        super().__init__()
        self.sessions = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def settings_overrides(smtp_port, own_redis):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_starttls": False,
            "redis_url": own_redis.url, "email_retries": 30, "email_retry_seconds": 0.2}


async def until(check, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return result


@pytest.mark.gen_test(timeout=60)
async def test_email_retried_while_smtp_is_down_is_delivered_once(api, tokens, services,
                                                                  smtp_port):
    ticket = await api("POST", "/api/support/tickets", token=await tokens(BUYER),
                       json={"subject": "Refund", "category": "Refund", "message": "Hi"})
    reply = await api("POST", f"/api/admin/support/tickets/{ticket.json['id']}/email",
                      json={"subject": "Back soon", "message": "We are on it."},
                      token=await tokens(ADMIN))
    assert reply.status == 200 and reply.json["status"] == "queued"
    email_id = ObjectId(reply.json["id"])

    async def tried_twice():
        record = await services.db.emails.find_one({"_id": email_id})
        return record["status"] == "retrying" and record["attempts"] >= 2
    await until(tried_twice)  # nothing listens on the port: connection refused, retried

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        record = await email_status(services.db, email_id, "sent")
        [envelope] = inbox.messages
        assert envelope.rcpt_tos == [BUYER] and record["attempts"] >= 3
        assert f"<{email_id}@" in envelope.content.decode()  # Message-ID from the email id
        # the job is done: re-driving it (a duplicate enqueue) sends nothing more
        assert await services.jobs.enqueue("deliver_email", key="again", email_id=str(email_id))
        await until(lambda: _finished(services, "again"))
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


async def _finished(services, key: str) -> bool:
    job = await services.jobs.queue.job(key)
    return job is not None and job.status == "complete"


@pytest.mark.gen_test(timeout=60)
async def test_bulk_send_goes_out_in_batches_over_one_connection_each(api, tokens, services,
                                                                      smtp_port):
    await services.db.users.insert_many([
        {"email": f"reader{n}@example.com", "username": f"reader{n}", "user_type": "buyer",
         "username_lower": f"reader{n}", "email_lower": f"reader{n}@example.com",
         "is_active": True, "staff_role": None} for n in range(150)])
    inbox = CountingInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        admin = await tokens(ADMIN)
        recipients = [f"r{n}@example.com" for n in range(3)]
        ids = []
        for address in recipients:
            sent = await api("POST", "/api/admin/emails/send", token=admin, json={
                "email": address, "subject": "Hello", "body": "News", "category": "newsletter"})
            assert sent.status == 200 and sent.json["queued"] == 1, sent.json
            ids += sent.json["email_ids"]
        everyone = await api("POST", "/api/admin/emails/send", token=admin, json={
            "segment": "all", "subject": "Hi {{username}}", "body": "News",
            "category": "announcement"})
        assert everyone.status == 200, everyone.json
        total = everyone.json["queued"]
        assert total == everyone.json["recipients"] == len(everyone.json["email_ids"]) > 0
        before = inbox.sessions

        async def all_sent():
            return await services.db.emails.count_documents(
                {"category": "announcement", "status": "sent"}) == total
        await until(all_sent)
        assert len(inbox.messages) == total + 3
        assert inbox.sessions - before <= -(-total // 100)  # one connection per batch of 100
    finally:
        controller.stop()


class TestDeadLetters:
    @pytest.fixture
    def settings_overrides(self, smtp_port):  # embedded queue (no Redis): same jobs, in process
        return {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_starttls": False,
                "email_retries": 2, "email_retry_seconds": 0.1}

    @pytest.mark.gen_test(timeout=60)
    async def test_email_failing_its_last_try_is_a_dead_letter(self, api, tokens, services,
                                                               http_client, base_url):
        admin = await tokens(ADMIN)
        sent = await api("POST", "/api/admin/emails/send", token=admin, json={
            "email": "lost@example.com", "subject": "Hi", "body": "Nobody listens"})
        assert sent.status == 200, sent.json
        [email_id] = sent.json["email_ids"]
        record = await email_status(services.db, ObjectId(email_id), "failed")
        assert record["attempts"] == 2 and record["error"] == "SMTPConnectError"

        async def dead():
            reply = await api("GET", "/api/admin/jobs", token=admin)
            assert reply.status == 200, reply.json
            return reply.json["dead_letters"]
        [letter] = await until(dead)
        assert letter["function"] == "deliver_batch" and letter["attempts"] == 2
        assert letter["kwargs"] == {"email_ids": [email_id]} and "SMTPConnectError" in letter["error"]
        history = await api("GET", "/api/admin/emails/history?status=failed", token=admin)
        assert [e["id"] for e in history.json["items"]] == [email_id]
        assert (await api("GET", "/api/admin/jobs", token=await tokens(BUYER))
                ).status == 403
        metrics = (await http_client.fetch(base_url + "/metrics")).body.decode()
        assert 'hwc3d_jobs_total{function="deliver_batch",outcome="failed"} 1.0' in metrics
        assert 'hwc3d_jobs_total{function="deliver_batch",outcome="retried"} 1.0' in metrics
        assert 'hwc3d_jobs_queue{state="queued"} 0.0' in metrics


@pytest.mark.store
@pytest.mark.gen_test(timeout=90)
async def test_job_left_by_a_stopped_instance_is_run_by_another(tmp_path, own_redis, smtp_port):
    """An instance without a worker enqueues (as one whose worker died would); the job waits
    in Redis and another instance's worker delivers it, once."""
    from conftest import test_settings  # the module pytest loaded: the test's store

    from tests.instances import start_instance, stop_instance

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    base = {"redis_url": own_redis.url, "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
            "smtp_starttls": False}
    producer = await start_instance(test_settings(tmp_path / "a", jobs_worker=False, **base))
    db = producer.services.db
    consumer = None
    try:
        record = await producer.services.mailer.send("late@example.com", "Kept", "In Redis")
        depth = await producer.services.jobs.refresh_metrics()
        assert depth["queued"] == 1 and inbox.messages == []
        await stop_instance(producer)
        consumer = await start_instance(test_settings(tmp_path / "b", **base), db=db)
        await email_status(consumer.services.db, record["_id"], "sent")
        [envelope] = inbox.messages
        assert envelope.rcpt_tos == ["late@example.com"]
    finally:
        controller.stop()
        if consumer is not None:
            await stop_instance(consumer)


@pytest.mark.store
@pytest.mark.gen_test(timeout=90)
async def test_job_of_a_killed_worker_is_swept_and_run_again(tmp_path, own_redis, smtp_port):
    """A worker took the job and its instance died (the job stays "active" in Redis, its
    timeout long passed): another instance's sweep puts it back and delivers it."""
    from conftest import test_settings  # the module pytest loaded: the test's store
    from saq.job import Status

    from tests.instances import start_instance, stop_instance

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    base = {"redis_url": own_redis.url, "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
            "smtp_starttls": False, "jobs_sweep_seconds": 1}
    dead = await start_instance(test_settings(tmp_path / "a", jobs_worker=False, **base))
    db = dead.services.db
    survivor = None
    try:
        record = await dead.services.mailer.send("swept@example.com", "Swept", "Not lost")
        job = await dead.services.jobs.queue.dequeue(timeout=5)  # its worker took it...
        assert job is not None and job.kwargs == {"email_id": str(record["_id"])}
        job.attempts += 1
        job.started = int(time.time() * 1000) - 3_600_000  # ...an hour ago, and died
        await job.update(status=Status.ACTIVE)
        await stop_instance(dead)
        survivor = await start_instance(test_settings(tmp_path / "b", **base), db=db)
        await email_status(survivor.services.db, record["_id"], "sent", timeout=30)
        [envelope] = inbox.messages
        assert envelope.rcpt_tos == ["swept@example.com"]
    finally:
        controller.stop()
        if survivor is not None:
            await stop_instance(survivor)
