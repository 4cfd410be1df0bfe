"""Packaging and deployment files, checked with the real tools where this machine has them
(README "Deployment"): `.env.example` lists every variable the server reads and loads as a
production configuration; `compose.yaml` parses and wires MongoDB, Redis, MinIO, three
instances and nginx; `config/nginx.conf` passes `nginx -t`; the systemd unit passes
`systemd-analyze verify`; the Dockerfile runs as non-root with a health check; and the server
compresses its answers and hands local files to nginx when told to."""
from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values
from nginx_support import nginx_binary, render_config

from config import load_settings

ROOT = Path(__file__).resolve().parent.parent


def variables_read() -> set[str]:
    """Every environment variable name `load_settings` reads (config/settings.py)."""
    source = (ROOT / "config" / "settings.py").read_text()
    names = set(re.findall(r'read\.\w+\("([A-Z0-9_]+)"', source))
    providers = re.search(r"_OAUTH_DEFAULTS = \{(.*?)\n\}", source, re.S).group(1)
    for provider in re.findall(r'^\s+"(\w+)": \(', providers, re.M):
        for suffix in re.findall(r'read\.\w+\(f"\{upper\}_([A-Z_]+)"', source):
            names.add(f"{provider.upper()}_{suffix}")
    return names


def test_env_example_lists_every_variable_and_loads_in_production():
    names = variables_read()
    assert {"MONGODB_URL", "MAX_JSON_KB", "GITHUB_CLIENT_ID", "DISCORD_EMAILS_URL"} <= names
    example = dotenv_values(ROOT / ".env.example")
    assert sorted(names - set(example)) == []
    assert sorted(set(example) - names) == []  # nothing listed that the server ignores
    values = {k: v for k, v in example.items() if v is not None}
    values["JWT_SECRET_KEY"] = "k" * 40
    settings = load_settings(environ=values, dotenv_path=None)
    assert settings.production and settings.seed_fixtures is False


def test_compose_file_wires_the_services_and_instances():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"mongo", "redis", "minio", "nginx"} <= set(services)
    apps = sorted(name for name in services if re.fullmatch(r"app\d+", name))
    assert len(apps) >= 3
    for name in apps:
        app = services[name]
        assert app["build"] == "."
        env = app["environment"]
        assert env["ENV"] == "production"
        assert env["MONGODB_URL"].startswith("mongodb://mongo:")
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["S3_ENDPOINT_URL"].startswith("http://minio:")
        assert "JWT_SECRET_KEY" in env and env["COMPRESS_RESPONSES"] == "false"
        assert set(app["depends_on"]) == {"mongo", "redis", "minio"}
        assert env.keys() <= variables_read()
    for name in ("mongo", "redis", "minio"):
        assert services[name]["healthcheck"]["test"]
    nginx = services["nginx"]
    assert set(nginx["depends_on"]) == set(apps)
    command = " ".join(nginx["command"])
    for index, name in enumerate(apps, start=1):
        assert f"127[.]0[.]0[.]1:800{index}/{name}:8000" in command
    assert "./config/nginx.conf:/etc/hwc3d/nginx.conf:ro" in nginx["volumes"]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        checked = subprocess.run([docker, "compose", "-f", str(ROOT / "compose.yaml"), "config", "-q"],
                                 capture_output=True, text=True, env={"JWT_SECRET_KEY": "k" * 40,
                                                                       "PATH": "/usr/bin:/bin"})
        assert checked.returncode == 0, checked.stderr


def test_nginx_config_passes_nginx_t(tmp_path):
    text = render_config((ROOT / "config" / "nginx.conf").read_text(), tmp_path, 18080,
                         [18081, 18082], "root")
    for needed in ("gzip on;", "application/json", "limit_req zone=hwc3d_credentials",
                   "X-Frame-Options", "internal;", "error_page 429"):
        assert needed in text, needed
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / f"{kind}_temp").mkdir()
    checked = subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr
    broken = tmp_path / "broken.conf"
    broken.write_text(text.replace("limit_req zone=hwc3d_credentials", "limit_req zone=missing"))
    assert subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(broken)],
                          capture_output=True, timeout=60).returncode != 0


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    unit = (ROOT / "deploy" / "hwc3d@.service").read_text()
    for needed in ("ExecStart=/opt/hwc3d/.venv/bin/python server.py --host 127.0.0.1 --port %i",
                   "KillSignal=SIGTERM", "User=hwc3d", "EnvironmentFile=/etc/hwc3d/hwc3d.env"):
        assert needed in unit, needed
    if analyze is None:
        return  # no systemd on this machine: the text checks above are what can be checked
    # the unit as installed, its paths pointed at this machine (the venv's python, a user
    # that exists, an environment file)
    (tmp_path / "hwc3d.env").write_text("")
    rendered = (unit.replace("/opt/hwc3d/.venv/bin/python", str(Path(sys.executable).resolve()))
                .replace("/etc/hwc3d/hwc3d.env", str(tmp_path / "hwc3d.env"))
                .replace("/opt/hwc3d", str(tmp_path))
                .replace("User=hwc3d", "User=root").replace("Group=hwc3d", "Group=root"))
    path = tmp_path / "hwc3d@8001.service"
    path.write_text(rendered)
    checked = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                             timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert "hwc3d@8001.service" not in checked.stderr, checked.stderr  # no warning on it
    path.write_text(rendered.replace("KillMode=mixed", "KillMode=sometimes"))
    checked = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                             timeout=120)
    assert "kill mode" in checked.stderr.lower()


def test_dockerfile_is_slim_non_root_with_a_health_check():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^USER hwc3d$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/readyz", text, re.M)
    assert "pip install -r requirements.txt" in text and "requirements-dev" not in text
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, re.M))
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - {"tests"} <= copied, packages - copied
    files = {name for names in re.findall(r"^COPY ([\w. ]+) \./$", text, re.M)
             for name in names.split()}
    assert {p.name for p in ROOT.glob("*.py")} <= files    # server.py and what it imports


# --------------------------------------------------------------------------- the server

@pytest.mark.gen_test(timeout=30)
async def test_answers_are_gzipped_when_the_client_accepts_it(http_client, base_url):
    from tornado.httpclient import HTTPRequest

    response = await http_client.fetch(HTTPRequest(
        base_url + "/api/models?limit=20", headers={"Accept-Encoding": "gzip"},
        decompress_response=False))
    assert response.headers["Content-Encoding"] == "gzip"
    items = json.loads(gzip.decompress(response.body))["items"]
    assert len(items) == 20
    plain = await http_client.fetch(HTTPRequest(base_url + "/api/models?limit=20",
                                                decompress_response=False))
    assert "Content-Encoding" not in plain.headers
    assert len(response.body) < len(plain.body) / 2


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings_overrides", [{"accel_redirect_prefix": "/_files/"}])
async def test_local_files_are_handed_to_nginx_with_x_accel_redirect(http_client, base_url,
                                                                     settings_overrides):
    from tornado.httpclient import HTTPRequest

    response = await http_client.fetch(HTTPRequest(base_url + "/files/thumbnails/wooden-crate.png"))
    assert response.headers["X-Accel-Redirect"] == "/_files/thumbnails/wooden-crate.png"
    assert response.headers["Content-Type"] == "image/png" and response.body == b""
    missing = await http_client.fetch(HTTPRequest(base_url + "/files/thumbnails/none.png"),
                                      raise_error=False)
    assert missing.code == 404 and "X-Accel-Redirect" not in missing.headers
