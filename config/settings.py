"""Environment variables → a frozen `Settings` object, validated at start-up.

Names follow seed 000 "Environment Variables" where the seed has them. With no variable set,
every part runs embedded (docs/architecture.md §1): in-memory documents, in-process broker, local-disk
storage under `DATA_DIR`, the test payment provider and a logged email outbox.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from dotenv import dotenv_values

DEFAULT_JWT_SECRET = "hwc3d-development-secret-do-not-use-in-production"

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class RateLimit:
    """`count` requests per `seconds`-long fixed window, parsed from e.g. ``"5/minute"``."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Parse ``N/second|minute|hour|day`` (plural allowed) or ``N/<seconds>s``.

        Raises ValueError on anything else.
        """
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+s|[a-z]+?)s?\s*", text.lower())
        if not match:
            raise ValueError(f"expected a form such as 5/minute, got {text!r}")
        count, period = int(match.group(1)), match.group(2)
        if period.endswith("s") and period[:-1].isdigit():
            seconds = int(period[:-1])
        elif period in _PERIODS:
            seconds = _PERIODS[period]
        else:
            raise ValueError(f"unknown period {period!r} in {text!r}")
        if count < 1 or seconds < 1:
            raise ValueError(f"a rate limit needs a positive count and period: {text!r}")
        return cls(count, seconds)


@dataclass(frozen=True)
class OAuthProvider:
    """Client credentials and endpoints of one OAuth provider (google, github, discord)."""

    name: str
    client_id: str | None
    client_secret: str | None
    token_url: str
    userinfo_url: str
    emails_url: str | None = None


@dataclass(frozen=True)
class Settings:
    """Every setting of one instance. Built by `load_settings`; never mutated."""

    env: str = "development"
    mongodb_url: str | None = None
    mongodb_db: str = "hwc3d"
    redis_url: str | None = None
    redis_cluster_nodes: tuple[str, ...] = ()
    jwt_secret_key: str = DEFAULT_JWT_SECRET
    jwt_algorithm: str = "HS256"
    access_token_expire_minutes: int = 15
    refresh_token_expire_days: int = 7
    bcrypt_rounds: int = 12
    s3_bucket_name: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    cdn_url: str | None = None
    public_url: str = "http://localhost:8888"
    frontend_url: str = "http://localhost:8888"  # links in emails (README "Frontend routes")
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "noreply@hwc3d.com"
    smtp_starttls: bool = True
    oauth: Mapping[str, OAuthProvider] = field(default_factory=dict)
    admin_email: str | None = None
    admin_password: str | None = None
    cors_origins: tuple[str, ...] = ("http://localhost:3000",)
    data_dir: Path = Path("data")
    seed_fixtures: bool = True
    max_json_bytes: int = 1024 * 1024
    max_header_bytes: int = 64 * 1024
    rate_limits_enabled: bool = True
    rate_limit_auth: RateLimit = RateLimit(5, 60)
    rate_limit_upload: RateLimit = RateLimit(10, 3600)
    rate_limit_default: RateLimit = RateLimit(100, 60)
    rate_limit_anonymous: RateLimit = RateLimit(20, 60)
    rate_limit_admin: RateLimit = RateLimit(1000, 60)
    max_model_bytes: int = 100 * 1024 * 1024
    max_image_bytes: int = 10 * 1024 * 1024
    max_avatar_bytes: int = 2 * 1024 * 1024
    max_attachment_bytes: int = 20 * 1024 * 1024
    analysis_workers: int = 1
    analysis_timeout_seconds: float = 60.0
    analysis_memory_bytes: int = 2048 * 1024 * 1024
    image_workers: int = 2
    image_memory_bytes: int = 1024 * 1024 * 1024
    download_url_ttl_minutes: int = 15
    earnings_hold_days: int = 14
    preview_max_faces: int = 300_000
    preview_max_texture_px: int = 2048
    preview_timeout_seconds: float = 300.0
    ws_ping_interval: float = 25.0
    ws_ping_timeout: float = 20.0
    ws_max_message_size: int = 64 * 1024
    ws_queue_size: int = 256
    history_size: int = 1000
    history_ttl_seconds: int = 86400
    outbox_size: int = 10_000
    presence_coalesce_above: int = 200
    log_format: str = "text"
    build_version: str = "dev"
    compress_responses: bool = True
    accel_redirect_prefix: str | None = None
    shutdown_grace_seconds: int = 0
    log_level: str = "INFO"
    access_log_buffer: int = 64
    jobs_worker: bool = True
    jobs_concurrency: int = 4
    jobs_sweep_seconds: int = 30
    jobs_heartbeat_seconds: int = 30
    preview_retries: int = 3
    preview_retry_seconds: float = 30.0
    email_retries: int = 8
    email_retry_seconds: float = 10.0
    cron_renewals: str = "*/5 * * * *"
    cron_earnings: str = "*/15 * * * *"
    cron_reclaim: str = "*/5 * * * *"
    cron_uploads: str = "7 * * * *"
    unattached_upload_hours: float = 24.0
    renewal_tries: int = 4
    renewal_retry_hours: float = 24.0

    @property
    def embedded_store(self) -> bool:
        """True when documents live in memory (mongomock-motor), i.e. no MONGODB_URL."""
        return not self.mongodb_url

    @property
    def production(self) -> bool:
        return self.env == "production"


_OAUTH_DEFAULTS = {
    "google": ("https://oauth2.googleapis.com/token",
               "https://openidconnect.googleapis.com/v1/userinfo", None),
    "github": ("https://github.com/login/oauth/access_token",
               "https://api.github.com/user", "https://api.github.com/user/emails"),
    "discord": ("https://discord.com/api/oauth2/token",
                "https://discord.com/api/users/@me", None),
}


class _Reader:
    """Reads typed values from a mapping, raising ConfigError that names the variable."""

    def __init__(self, values: Mapping[str, str]):
        self.values = values

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return value if value not in (None, "") else default

    def int(self, name: str, default: int, minimum: int = 0) -> int:
        raw = self.str(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def float(self, name: str, default: float) -> float:
        raw = self.str(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value <= 0:
            raise ConfigError(f"{name} must be positive, got {raw!r}")
        return value

    def bool(self, name: str, default: bool) -> bool:
        raw = self.str(name)
        if raw is None:
            return default
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def rate(self, name: str, default: RateLimit) -> RateLimit:
        raw = self.str(name)
        if raw is None:
            return default
        try:
            return RateLimit.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None

    def url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        raw = self.str(name)
        if raw is not None and not raw.startswith(tuple(s + "://" for s in schemes)):
            raise ConfigError(f"{name} must start with one of {', '.join(schemes)}://, got {raw!r}")
        return raw

    def cron(self, name: str, default: str) -> str:
        """A cron schedule: 5 fields (minute hour day month weekday), or 6 with seconds last."""
        from croniter import croniter

        value = self.str(name, default)
        if not croniter.is_valid(value):
            raise ConfigError(f"{name} must be a cron schedule such as '*/5 * * * *', "
                              f"got {value!r}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = (self.str(name, default) or default).lower()
        if raw not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return raw


def _oauth(read: _Reader) -> dict[str, OAuthProvider]:
    providers = {}
    for name, (token_url, userinfo_url, emails_url) in _OAUTH_DEFAULTS.items():
        upper = name.upper()
        providers[name] = OAuthProvider(
            name=name,
            client_id=read.str(f"{upper}_CLIENT_ID"),
            client_secret=read.str(f"{upper}_CLIENT_SECRET"),
            token_url=read.url(f"{upper}_TOKEN_URL", ("http", "https")) or token_url,
            userinfo_url=read.url(f"{upper}_USERINFO_URL", ("http", "https")) or userinfo_url,
            emails_url=read.url(f"{upper}_EMAILS_URL", ("http", "https")) or emails_url,
        )
    return providers


def load_settings(environ: Mapping[str, str] | None = None,
                  dotenv_path: str | os.PathLike | None = ".env",
                  **overrides) -> Settings:
    """Build `Settings` from `environ` (default `os.environ`) over a `.env` file if present.

    Keyword `overrides` replace single fields after parsing (tests and `server.py` options).
    Raises ConfigError naming the variable on any malformed value, and in production
    (`ENV=production`) on the default JWT secret or the in-memory store.
    """
    values: dict[str, str] = {}
    if dotenv_path and Path(dotenv_path).is_file():
        values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    read = _Reader(values)
    env = read.choice("ENV", "development", ("development", "production", "test"))
    settings = Settings(
        env=env,
        mongodb_url=read.url("MONGODB_URL", ("mongodb", "mongodb+srv")),
        mongodb_db=read.str("MONGODB_DB", "hwc3d"),
        redis_url=_plain_redis(read),
        redis_cluster_nodes=_cluster_nodes(read),
        jwt_secret_key=read.str("JWT_SECRET_KEY", DEFAULT_JWT_SECRET),
        jwt_algorithm=read.choice("JWT_ALGORITHM", "HS256", ("hs256", "hs384", "hs512")).upper(),
        access_token_expire_minutes=read.int("ACCESS_TOKEN_EXPIRE_MINUTES", 15, minimum=1),
        refresh_token_expire_days=read.int("REFRESH_TOKEN_EXPIRE_DAYS", 7, minimum=1),
        bcrypt_rounds=read.int("BCRYPT_ROUNDS", 12, minimum=4),
        s3_bucket_name=read.str("S3_BUCKET_NAME"),
        s3_access_key=read.str("S3_ACCESS_KEY"),
        s3_secret_key=read.str("S3_SECRET_KEY"),
        s3_endpoint_url=read.url("S3_ENDPOINT_URL", ("http", "https")),
        s3_region=read.str("S3_REGION", "us-east-1"),
        cdn_url=read.url("CDN_URL", ("http", "https")),
        public_url=(read.url("PUBLIC_URL", ("http", "https")) or "http://localhost:8888").rstrip("/"),
        frontend_url=(read.url("FRONTEND_URL", ("http", "https"))
                      or read.url("PUBLIC_URL", ("http", "https"))
                      or "http://localhost:8888").rstrip("/"),
        stripe_secret_key=read.str("STRIPE_SECRET_KEY"),
        stripe_webhook_secret=read.str("STRIPE_WEBHOOK_SECRET"),
        stripe_api_base=read.url("STRIPE_API_BASE", ("http", "https")),
        smtp_host=read.str("SMTP_HOST"),
        smtp_port=read.int("SMTP_PORT", 587, minimum=1),
        smtp_user=read.str("SMTP_USER"),
        smtp_password=read.str("SMTP_PASSWORD"),
        smtp_from=read.str("SMTP_FROM", "noreply@hwc3d.com"),
        smtp_starttls=read.bool("SMTP_STARTTLS", True),
        oauth=_oauth(read),
        admin_email=read.str("ADMIN_EMAIL"),
        admin_password=read.str("ADMIN_PASSWORD"),
        cors_origins=tuple(o.strip() for o in (read.str("CORS_ORIGINS", "http://localhost:3000")
                                               or "").split(",") if o.strip()),
        data_dir=Path(read.str("DATA_DIR", "data")),
        # demo data only where it is harmless: the in-memory store outside production
        seed_fixtures=read.bool("SEED_FIXTURES", env != "production" and not read.str("MONGODB_URL")),
        max_json_bytes=read.int("MAX_JSON_KB", 1024, minimum=1) * 1024,
        max_header_bytes=read.int("MAX_HEADER_KB", 64, minimum=4) * 1024,
        rate_limits_enabled=read.bool("RATE_LIMITS_ENABLED", True),
        rate_limit_auth=read.rate("RATE_LIMIT_AUTH", RateLimit(5, 60)),
        rate_limit_upload=read.rate("RATE_LIMIT_UPLOAD", RateLimit(10, 3600)),
        rate_limit_default=read.rate("RATE_LIMIT_DEFAULT", RateLimit(100, 60)),
        rate_limit_anonymous=read.rate("RATE_LIMIT_ANONYMOUS", RateLimit(20, 60)),
        rate_limit_admin=read.rate("RATE_LIMIT_ADMIN", RateLimit(1000, 60)),
        max_model_bytes=read.int("MAX_MODEL_MB", 100, minimum=1) * 1024 * 1024,
        max_image_bytes=read.int("MAX_IMAGE_MB", 10, minimum=1) * 1024 * 1024,
        max_avatar_bytes=read.int("MAX_AVATAR_MB", 2, minimum=1) * 1024 * 1024,
        max_attachment_bytes=read.int("MAX_ATTACHMENT_MB", 20, minimum=1) * 1024 * 1024,
        analysis_workers=read.int("ANALYSIS_WORKERS", 1, minimum=1),
        analysis_timeout_seconds=read.float("ANALYSIS_TIMEOUT_SECONDS", 60.0),
        analysis_memory_bytes=read.int("ANALYSIS_MEMORY_MB", 2048, minimum=512) * 1024 * 1024,
        image_workers=read.int("IMAGE_WORKERS", 2, minimum=1),
        image_memory_bytes=read.int("IMAGE_MEMORY_MB", 1024, minimum=256) * 1024 * 1024,
        download_url_ttl_minutes=read.int("DOWNLOAD_URL_TTL_MINUTES", 15, minimum=1),
        earnings_hold_days=read.int("EARNINGS_HOLD_DAYS", 14, minimum=0),
        preview_max_faces=read.int("PREVIEW_MAX_FACES", 300_000, minimum=100),
        preview_max_texture_px=read.int("PREVIEW_MAX_TEXTURE_PX", 2048, minimum=16),
        preview_timeout_seconds=read.float("PREVIEW_TIMEOUT_SECONDS", 300.0),
        ws_ping_interval=read.float("WS_PING_INTERVAL", 25.0),
        ws_ping_timeout=read.float("WS_PING_TIMEOUT", 20.0),
        ws_max_message_size=read.int("WS_MAX_MESSAGE_SIZE", 64 * 1024, minimum=1024),
        ws_queue_size=read.int("WS_QUEUE_SIZE", 256, minimum=1),
        history_size=read.int("HISTORY_SIZE", 1000, minimum=1),
        history_ttl_seconds=read.int("HISTORY_TTL_SECONDS", 86400, minimum=1),
        outbox_size=read.int("OUTBOX_SIZE", 10_000, minimum=1),
        presence_coalesce_above=read.int("PRESENCE_COALESCE_ABOVE", 200, minimum=1),
        log_format=read.choice("LOG_FORMAT", "json" if env == "production" else "text",
                               ("json", "text")),
        build_version=read.str("BUILD_VERSION", "dev"),
        compress_responses=read.bool("COMPRESS_RESPONSES", True),
        accel_redirect_prefix=_accel_prefix(read.str("ACCEL_REDIRECT_PREFIX")),
        shutdown_grace_seconds=read.int("SHUTDOWN_GRACE_SECONDS", 0, minimum=0),
        log_level=read.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
        access_log_buffer=read.int("ACCESS_LOG_BUFFER", 64, minimum=0),
        jobs_worker=read.bool("JOBS_WORKER", True),
        jobs_concurrency=read.int("JOBS_CONCURRENCY", 4, minimum=1),
        jobs_sweep_seconds=read.int("JOBS_SWEEP_SECONDS", 30, minimum=1),
        jobs_heartbeat_seconds=read.int("JOBS_HEARTBEAT_SECONDS", 30, minimum=1),
        preview_retries=read.int("PREVIEW_RETRIES", 3, minimum=1),
        preview_retry_seconds=read.float("PREVIEW_RETRY_SECONDS", 30.0),
        email_retries=read.int("EMAIL_RETRIES", 8, minimum=1),
        email_retry_seconds=read.float("EMAIL_RETRY_SECONDS", 10.0),
        cron_renewals=read.cron("CRON_RENEWALS", "*/5 * * * *"),
        cron_earnings=read.cron("CRON_EARNINGS", "*/15 * * * *"),
        cron_reclaim=read.cron("CRON_RECLAIM", "*/5 * * * *"),
        cron_uploads=read.cron("CRON_UPLOADS", "7 * * * *"),
        unattached_upload_hours=read.float("UNATTACHED_UPLOAD_HOURS", 24.0),
        renewal_tries=read.int("RENEWAL_TRIES", 4, minimum=1),
        renewal_retry_hours=read.float("RENEWAL_RETRY_HOURS", 24.0),
    )
    if overrides:
        known = {f.name for f in fields(Settings)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        settings = Settings(**{**{f.name: getattr(settings, f.name) for f in fields(Settings)},
                               **overrides})
    _check_production(settings)
    _check_s3(settings)
    _check_admin(settings)
    return settings


def _plain_redis(read: _Reader) -> str | None:
    """REDIS_URL, unless it names a cluster (``redis+cluster://``, see `_cluster_nodes`)."""
    raw = read.str("REDIS_URL")
    if raw and raw.lower().startswith("redis+cluster://"):
        return None
    return read.url("REDIS_URL", ("redis", "rediss", "unix"))


def _cluster_nodes(read: _Reader) -> tuple[str, ...]:
    """The seed nodes (``"host:port"``) of the Redis Cluster (README "Configuration").

    From REDIS_CLUSTER_URLS: comma-separated ``host:port`` (each may be written
    ``redis://host:port``), or one ``redis+cluster://host:port,host:port`` URL; or from a
    REDIS_URL of the form ``redis+cluster://...``. Empty when neither names a cluster.
    Raises ConfigError on a malformed node, or when both name one.
    """
    raw = (read.str("REDIS_CLUSTER_URLS") or "").strip()
    plain = (read.str("REDIS_URL") or "").strip()
    name = "REDIS_CLUSTER_URLS"
    if plain.lower().startswith("redis+cluster://"):
        if raw:
            raise ConfigError("REDIS_URL names a cluster (redis+cluster://) and "
                              "REDIS_CLUSTER_URLS is set too: keep one")
        raw, name = plain, "REDIS_URL"
    if not raw:
        return ()
    if raw.lower().startswith("redis+cluster://"):
        raw = raw[len("redis+cluster://"):].split("/", 1)[0]
    nodes = []
    for part in (p.strip() for p in raw.split(",")):
        node = re.sub(r"^redis://", "", part, flags=re.IGNORECASE).rstrip("/")
        match = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):(\d{1,5})", node)
        if not match or not 0 < int(match.group(2)) < 65536:
            raise ConfigError(f"{name} must list cluster nodes as host:port[,host:port...] "
                              f"(or redis+cluster://host:port,...), got {part!r}")
        nodes.append(f"{match.group(1)}:{int(match.group(2))}")
    return tuple(dict.fromkeys(nodes))


def _accel_prefix(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not re.fullmatch(r"/[A-Za-z0-9_./-]*/", raw):
        raise ConfigError(f"ACCEL_REDIRECT_PREFIX must be a path such as /_files/, got {raw!r}")
    return raw


def _check_production(settings: Settings) -> None:
    if not settings.production:
        return
    if settings.jwt_secret_key == DEFAULT_JWT_SECRET:
        raise ConfigError("JWT_SECRET_KEY must be set in production (ENV=production)")
    if len(settings.jwt_secret_key) < 32:
        raise ConfigError("JWT_SECRET_KEY must be at least 32 characters in production")
    if settings.embedded_store:
        raise ConfigError("MONGODB_URL must be set in production: the in-memory store loses data")
    refuse_seed_in_production(settings, settings.seed_fixtures, "SEED_FIXTURES=true")


def refuse_seed_in_production(settings: Settings, seed: bool | None, asked_by: str) -> None:
    """Raise ConfigError when demo data (fixtures/, with the README's demo accounts) is asked
    for in production; `asked_by` names what asked (the variable or the option)."""
    if settings.production and seed:
        raise ConfigError(f"{asked_by} is refused in production (ENV=production): the fixtures "
                          "bring demo accounts with published passwords; create the first "
                          "superadmin with ADMIN_EMAIL and ADMIN_PASSWORD")


def _check_s3(settings: Settings) -> None:
    if settings.s3_bucket_name and not (settings.s3_access_key and settings.s3_secret_key):
        raise ConfigError("S3_ACCESS_KEY and S3_SECRET_KEY are required when S3_BUCKET_NAME is set")


def _check_admin(settings: Settings) -> None:
    """ADMIN_EMAIL and ADMIN_PASSWORD come together (the first superadmin, README)."""
    if bool(settings.admin_email) != bool(settings.admin_password):
        raise ConfigError("ADMIN_EMAIL and ADMIN_PASSWORD must be set together")
    if settings.admin_email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+",
                                                 settings.admin_email):
        raise ConfigError(f"ADMIN_EMAIL must be an email address, got {settings.admin_email!r}")
    password = settings.admin_password or ""
    if password and not (8 <= len(password.encode("utf-8")) <= 72
                         and any(c.isalpha() for c in password)
                         and any(c.isdigit() for c in password)):
        raise ConfigError("ADMIN_PASSWORD must be 8-72 bytes with a letter and a digit "
                          "(the password rules of registration)")
