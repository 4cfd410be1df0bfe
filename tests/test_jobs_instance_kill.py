"""An instance killed (SIGKILL) while a job runs loses nothing and repeats nothing (README
"Background jobs"): a `server.py` process on Redis takes the delivery of a password-reset
email, the SMTP server holds it in flight, the process is killed; a second process on the
same Redis and store finds the job (its heartbeat stopped), runs it again, and the email
arrives exactly once.

Two processes share documents only through a MongoDB server, so both run on the test
SecantusDB wire store in either run (the in-memory store lives inside one process).
"""
from __future__ import annotations

import signal
import uuid

import pytest
from aiosmtpd.controller import Controller
from conftest import QUIET_CRON, free_port
from demo_accounts import BUYER

from tests.job_support import call, metric, until
from tests.mail_support import HoldingInbox
from tests.processes import Server, clean_env

pytestmark = pytest.mark.store



@pytest.fixture
def database(wire_store):
    name = f"k_{uuid.uuid4().hex[:16]}"
    yield {"MONGODB_URL": wire_store.url, "MONGODB_DB": name}
    wire_store.drop(name)


@pytest.fixture
def inbox():
    handler = HoldingInbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


def start(tmp_path, name: str, env: dict) -> Server:
    folder = tmp_path / name
    folder.mkdir()
    server = Server(folder, free_port(), env)
    server.wait_for("HWC3D server on", timeout=90)
    return server


def test_email_in_flight_when_its_instance_is_killed_arrives_once(tmp_path, own_redis,
                                                                 database, inbox):
    handler, smtp_port = inbox
    env = clean_env(
        **database, REDIS_URL=own_redis.url, SEED_FIXTURES="true", BCRYPT_ROUNDS="4",
        RATE_LIMITS_ENABLED="false", DATA_DIR=str(tmp_path / "data"),
        SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), SMTP_STARTTLS="false",
        EMAIL_RETRY_SECONDS="0.2", JOBS_SWEEP_SECONDS="1", JOBS_HEARTBEAT_SECONDS="2",
        **{key.upper(): value for key, value in QUIET_CRON.items()})
    first = start(tmp_path, "first", env)
    second = None
    try:
        status, _ = call(first.port, "POST", "/api/auth/forgot-password", {"email": BUYER})
        assert status == 200
        assert handler.held.wait(timeout=30), "the reset email never reached the SMTP server"
        first.proc.send_signal(signal.SIGKILL)  # mid-delivery: no reply to RCPT yet
        first.proc.wait(timeout=10)
        assert handler.messages == []

        second = start(tmp_path, "second", env)
        [message] = handler.wait_for_messages(1, timeout=90)
        assert message.rcpt_tos == [BUYER]
        assert "reset" in message.content.decode().lower()

        def settled() -> bool:  # the job finished and nothing is left to run
            _, page = call(second.port, "GET", "/metrics")
            done = 'hwc3d_jobs_total{function="deliver_email",outcome="complete"}'
            return (metric(page, done) == 1.0
                    and metric(page, 'hwc3d_jobs_queue{state="active"}') == 0.0
                    and metric(page, 'hwc3d_jobs_queue{state="queued"}') == 0.0)
        until(settled, 30, "the delivery job finished on the second instance")
        assert len(handler.messages) == 1
    finally:
        first.stop()
        if second is not None:
            second.stop()
