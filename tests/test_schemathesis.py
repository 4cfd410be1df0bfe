"""schemathesis over the whole of `/openapi.json`, against a real `server.py`.

Every operation gets generated requests (its examples, then a few fuzzed ones) as the
superadmin, and every answer is checked: no 5xx (`not_a_server_error`), a declared status
(`status_code_conformance`), a body that matches the declared schema
(`response_schema_conformance`) and content type (`content_type_conformance`). The run is
bounded by `MAX_EXAMPLES` per operation. The three verbs that end the caller's session are
left out (they would sign the run out). OAuth sign-in is configured against a local stand-in
provider that refuses every code, as a provider does for made-up codes.

The figures (operations, cases, failures by check) are printed and written to
`schemathesis-figures.json` in the test's temporary directory.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyotp
import pytest
from conftest import free_port
from demo_accounts import ADMIN, ADMIN_TOTP_SECRET, DEMO_PASSWORD
from sweep_support import Client, SweepServer

MAX_EXAMPLES = 3
CHECKS = ("not_a_server_error", "status_code_conformance", "response_schema_conformance",
          "content_type_conformance")
SESSION_ENDING = ("post_api_auth_logout", "put_api_users_me_password",
                  "delete_api_users_me_account")


class _RefusingProvider(BaseHTTPRequestHandler):
    """An OAuth provider that refuses every authorization code (400 invalid_grant)."""

    def do_POST(self) -> None:
        body = json.dumps({"error": "invalid_grant"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture(scope="module")
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory, provider):
    env = {}
    for name in ("GOOGLE", "GITHUB", "DISCORD"):
        env.update({f"{name}_CLIENT_ID": "schemathesis", f"{name}_CLIENT_SECRET": "secret",
                    f"{name}_TOKEN_URL": f"{provider}/token",
                    f"{name}_USERINFO_URL": f"{provider}/userinfo"})
    env["GITHUB_EMAILS_URL"] = f"{provider}/emails"
    instance = SweepServer(tmp_path_factory.mktemp("schemathesis"), free_port(), env_extra=env)
    instance.start()
    yield instance
    instance.stop()


def admin_token(base: str) -> str:
    client = Client(int(base.rsplit(":", 1)[1]))
    reply = client.request("POST", "/api/auth/admin/login", json_body={
        "email": ADMIN, "password": DEMO_PASSWORD,
        "otp_code": pyotp.TOTP(ADMIN_TOTP_SECRET).now()})
    assert reply.status == 200, reply.body
    return reply.json["access_token"]


def figures(report: dict) -> dict:
    """Operations, cases and failures by check from schemathesis's JSON run report."""
    return {"operations": report["operations"], "cases": report["test_cases"],
            "failures": {f"{f['code']} {f['title']}": {"count": f["count"],
                                                      "operations": f["operations"]}
                         for f in report["failures"]},
            "errors": report["errors"], "running_time_s": round(report["running_time"], 1)}


def test_every_operation_conforms_to_the_spec(server, tmp_path):
    base = f"http://127.0.0.1:{server.port}"
    report_path = tmp_path / "report.json"
    command = [str(Path(sys.executable).with_name("schemathesis")), "run",
               f"{base}/openapi.json", "--url", base,
               "-H", f"Authorization: Bearer {admin_token(base)}",
               "--checks", ",".join(CHECKS), "--phases", "examples,fuzzing",
               "--max-examples", str(MAX_EXAMPLES), "--seed", "20261203",
               "--request-timeout", "30", "--no-color",
               "--report", "json", "--report-json-path", str(report_path)]
    for operation_id in SESSION_ENDING:
        command += ["--exclude-operation-id", operation_id]
    run = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    report = json.loads(report_path.read_text())
    found = figures(report)
    (tmp_path / "schemathesis-figures.json").write_text(json.dumps(found, indent=2))
    print(json.dumps(found, indent=2))
    assert found["operations"]["tested"] == found["operations"]["selected"] > 250
    assert found["cases"]["generated"] > found["operations"]["tested"]
    assert found["failures"] == {} and found["errors"] == [], run.stdout[-20000:]
    assert run.returncode == 0, run.stdout[-5000:]
