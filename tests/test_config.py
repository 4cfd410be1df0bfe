"""Configuration: environment variables and `.env`, a bad value stops
start-up naming the variable, production refuses unsafe defaults, and `python server.py`
as a real process: the banner, the embedded store, serving, and a clean SIGTERM."""
import signal
import subprocess
import sys

import pytest
from processes import SERVER, Server, clean_env

from config import ConfigError, RateLimit, load_settings
from config.settings import DEFAULT_JWT_SECRET

STRONG_SECRET = "x" * 40


def settings_from(**environ):
    return load_settings(environ=environ, dotenv_path=None)


# ----------------------------------------------------------------- values

def test_no_variables_means_the_embedded_default():
    settings = settings_from()
    assert settings.embedded_store and settings.redis_url is None
    assert settings.jwt_secret_key == DEFAULT_JWT_SECRET
    assert (settings.access_token_expire_minutes, settings.refresh_token_expire_days) == (15, 7)
    assert settings.rate_limits_enabled
    assert (settings.rate_limit_auth, settings.rate_limit_upload, settings.rate_limit_default,
            settings.rate_limit_anonymous, settings.rate_limit_admin) == (
        RateLimit(5, 60), RateLimit(10, 3600), RateLimit(100, 60), RateLimit(20, 60),
        RateLimit(1000, 60))
    assert settings.earnings_hold_days == 14
    assert settings_from(EARNINGS_HOLD_DAYS="0").earnings_hold_days == 0


def test_seed_variable_names_are_read():
    settings = settings_from(
        MONGODB_URL="mongodb://db:27017", MONGODB_DB="shop", REDIS_URL="redis://cache:6379/1",
        ACCESS_TOKEN_EXPIRE_MINUTES="30", REFRESH_TOKEN_EXPIRE_DAYS="14",
        S3_BUCKET_NAME="models", S3_ACCESS_KEY="ak", S3_SECRET_KEY="sk",
        SMTP_HOST="mail", SMTP_PORT="2525", CORS_ORIGINS="https://a.example, https://b.example",
        RATE_LIMIT_AUTH="7/minute", RATE_LIMIT_UPLOAD="3/hours", RATE_LIMIT_DEFAULT="50/30s",
        RATE_LIMITS_ENABLED="false", GITHUB_CLIENT_ID="gh-id")
    assert (settings.mongodb_url, settings.mongodb_db, settings.redis_url) == (
        "mongodb://db:27017", "shop", "redis://cache:6379/1")
    assert (settings.access_token_expire_minutes, settings.refresh_token_expire_days) == (30, 14)
    assert (settings.s3_bucket_name, settings.smtp_host, settings.smtp_port) == ("models", "mail", 2525)
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.rate_limit_auth == RateLimit(7, 60)
    assert settings.rate_limit_upload == RateLimit(3, 3600)
    assert settings.rate_limit_default == RateLimit(50, 30)
    assert settings.rate_limits_enabled is False
    assert settings.oauth["github"].client_id == "gh-id"


@pytest.mark.parametrize("name, value", [
    ("ACCESS_TOKEN_EXPIRE_MINUTES", "fifteen"),
    ("ACCESS_TOKEN_EXPIRE_MINUTES", "0"),
    ("REFRESH_TOKEN_EXPIRE_DAYS", "-1"),
    ("RATE_LIMIT_AUTH", "lots"),
    ("RATE_LIMIT_UPLOAD", "10/fortnight"),
    ("RATE_LIMIT_DEFAULT", "0/minute"),
    ("RATE_LIMITS_ENABLED", "maybe"),
    ("REDIS_URL", "localhost:6379"),
    ("REDIS_CLUSTER_URLS", "redis-1"),
    ("REDIS_CLUSTER_URLS", "redis-1:6379,redis-2:not-a-port"),
    ("REDIS_CLUSTER_URLS", "redis-1:70000"),
    ("REDIS_CLUSTER_URLS", "redis+cluster://"),
    ("REDIS_URL", "redis+cluster://redis-1"),
    ("MONGODB_URL", "http://db"),
    ("SMTP_PORT", "smtp"),
    ("ENV", "staging"),
    ("JWT_ALGORITHM", "RS256"),
    ("EARNINGS_HOLD_DAYS", "-1"),
    ("EARNINGS_HOLD_DAYS", "two weeks"),
])
def test_a_bad_value_stops_start_up_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        settings_from(**{name: value})


@pytest.mark.parametrize("environ", [
    {"REDIS_CLUSTER_URLS": "redis-1:7000, redis-2:7001,redis-3:7002"},
    {"REDIS_CLUSTER_URLS": "redis+cluster://redis-1:7000,redis-2:7001,redis-3:7002"},
    {"REDIS_CLUSTER_URLS": "redis://redis-1:7000,redis://redis-2:7001,redis-3:7002"},
    {"REDIS_URL": "redis+cluster://redis-1:7000,redis-2:7001,redis-3:7002/0"},
])
def test_a_redis_cluster_is_named_by_its_seed_nodes(environ):
    settings = settings_from(**environ)
    assert settings.redis_cluster_nodes == ("redis-1:7000", "redis-2:7001", "redis-3:7002")
    assert settings.redis_url is None          # the job queue runs in process


def test_a_cluster_beside_a_plain_redis_keeps_the_plain_one_for_the_job_queue():
    settings = settings_from(REDIS_URL="redis://jobs:6379/0", REDIS_CLUSTER_URLS="redis-1:7000")
    assert (settings.redis_url, settings.redis_cluster_nodes) == ("redis://jobs:6379/0",
                                                                  ("redis-1:7000",))
    with pytest.raises(ConfigError, match="keep one"):
        settings_from(REDIS_URL="redis+cluster://redis-1:7000", REDIS_CLUSTER_URLS="redis-2:7000")


def test_production_refuses_the_default_jwt_secret():
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY"):
        settings_from(ENV="production", MONGODB_URL="mongodb://db:27017")


def test_production_refuses_the_in_memory_store():
    with pytest.raises(ConfigError, match="MONGODB_URL"):
        settings_from(ENV="production", JWT_SECRET_KEY=STRONG_SECRET)


def test_production_starts_with_a_secret_and_a_database():
    settings = settings_from(ENV="production", JWT_SECRET_KEY=STRONG_SECRET,
                             MONGODB_URL="mongodb://db:27017")
    assert settings.production and settings.log_format == "json"


def test_rate_limit_variables_take_the_seed_form():
    settings = settings_from(RATE_LIMIT_AUTH="5/minute", RATE_LIMIT_UPLOAD="10/hour",
                             RATE_LIMIT_DEFAULT="100/minute", RATE_LIMIT_ANONYMOUS="20/minute",
                             RATE_LIMIT_ADMIN="1000/minute")
    assert (settings.rate_limit_auth, settings.rate_limit_upload, settings.rate_limit_default,
            settings.rate_limit_anonymous, settings.rate_limit_admin) == (
        RateLimit(5, 60), RateLimit(10, 3600), RateLimit(100, 60), RateLimit(20, 60),
        RateLimit(1000, 60))
    assert settings_from(RATE_LIMIT_AUTH="2/seconds").rate_limit_auth == RateLimit(2, 1)
    assert settings_from(RATE_LIMIT_AUTH="3 / Day").rate_limit_auth == RateLimit(3, 86400)


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("ACCESS_TOKEN_EXPIRE_MINUTES=45\nRATE_LIMIT_DEFAULT=60/minute\n"
                      "MONGODB_DB=from_dotenv\n")
    settings = load_settings(environ={"MONGODB_DB": "from_env"}, dotenv_path=dotenv)
    assert settings.access_token_expire_minutes == 45
    assert settings.rate_limit_default == RateLimit(60, 60)
    assert settings.mongodb_db == "from_env"


def test_a_bad_value_in_dotenv_is_named_too(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("RATE_LIMIT_ANONYMOUS=twenty\n")
    with pytest.raises(ConfigError, match="RATE_LIMIT_ANONYMOUS"):
        load_settings(environ={}, dotenv_path=dotenv)


# ----------------------------------------------------------------- server.py as a process

@pytest.fixture
def run_server(tmp_path):
    started = []

    def start(*args: str, **env) -> Server:
        from conftest import free_port

        server = Server(tmp_path, free_port(), clean_env(**env), args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_server_in_production_refuses_the_default_secret(tmp_path):
    proc = subprocess.run([sys.executable, str(SERVER), "--port", "1"], cwd=tmp_path, check=False,
                          env=clean_env(ENV="production", MONGODB_URL="mongodb://db:27017"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "JWT_SECRET_KEY" in proc.stderr


def test_server_with_a_bad_value_exits_naming_it(tmp_path):
    proc = subprocess.run([sys.executable, str(SERVER), "--port", "1"], cwd=tmp_path, check=False,
                          env=clean_env(RATE_LIMIT_AUTH="five"), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert "RATE_LIMIT_AUTH" in proc.stderr


def test_server_embedded_default_serves_and_stops_on_sigterm(run_server):
    server = run_server()
    banner = server.wait_for("HWC3D server on")
    assert f"http://127.0.0.1:{server.port}" in banner
    server.wait_for("IN MEMORY")
    assert server.get("/healthz") == (200, {"status": "ok"})
    status, categories = server.get("/api/categories")
    assert status == 200
    items = categories["items"] if isinstance(categories, dict) else categories
    assert len(items) == 10
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=15) == 0
    assert "stopped" in server.log()


def test_server_reads_dotenv_from_its_folder(run_server, tmp_path):
    (tmp_path / ".env").write_text("RATE_LIMITS_ENABLED=false\nSEED_FIXTURES=false\n")
    server = run_server()
    server.wait_for("HWC3D server on")
    # unseeded (from .env): the categories list is empty
    status, categories = server.get("/api/categories")
    items = categories["items"] if isinstance(categories, dict) else categories
    assert status == 200 and items == []
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=15) == 0


def categories_served(server: Server) -> int:
    status, categories = server.get("/api/categories")
    assert status == 200
    return len(categories["items"] if isinstance(categories, dict) else categories)


def test_server_no_seed_option_starts_an_empty_store(run_server):
    server = run_server("--no-seed")
    server.wait_for("HWC3D server on")
    assert categories_served(server) == 0
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=15) == 0


def test_server_seed_option_wins_over_the_variable(run_server):
    server = run_server("--seed", SEED_FIXTURES="false")
    server.wait_for("HWC3D server on")
    assert categories_served(server) == 10
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=15) == 0
