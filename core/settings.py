"""The one settings object of every process, read from `IMAGES_*` variables (CONTRACT section 7)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from core import values
from core.dsn import DbDsn, DbTls, parse_dsn
from core.quotas import QuotaLimits
from core.setting_checks import SettingsError, check_combinations
from core.storage import StorageUrl, parse_storage_url
from core.variants import DEFAULT_VARIANT_WIDTHS, VariantWidths, parse_widths

PREFIX = "IMAGES_"


def _setting(env: str, parse: Callable[[str], Any], default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": PREFIX + env, "parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """Every tunable of the service; defaults suit a local run."""

    api_host: str = _setting("API_HOST", values.nonblank, "127.0.0.1", "Address the API listens on")
    api_port: int = _setting("API_PORT", values.port, 8080, "Port the API listens on")
    db_dsn: DbDsn = _setting("DB_DSN", parse_dsn, parse_dsn("mysql://root@127.0.0.1:3306/images"), "MariaDB DSN")
    db_pool_size: int = _setting("DB_POOL_SIZE", values.positive_int, 10, "Connections per process pool")
    db_password_file: str = _setting(
        "DB_PASSWORD_FILE", values.text, "", "File holding the database password (over the DSN's)"
    )
    db_tls_ca: str = _setting("DB_TLS_CA", values.text, "", "CA of MariaDB's certificate: TLS required (empty: none)")
    db_tls_cert: str = _setting("DB_TLS_CERT", values.text, "", "Client certificate for MariaDB (mutual TLS)")
    db_tls_key: str = _setting("DB_TLS_KEY", values.text, "", "Client key for MariaDB (mutual TLS)")
    db_tls_verify_identity: bool = _setting(
        "DB_TLS_VERIFY_IDENTITY", values.flag, True, "With a CA: the server's name must match its certificate"
    )
    kafka_bootstrap: str = _setting(
        "KAFKA_BOOTSTRAP", values.nonblank, "127.0.0.1:9092", "Kafka bootstrap servers, comma-separated"
    )
    kafka_security_protocol: str = _setting(
        "KAFKA_SECURITY_PROTOCOL",
        values.kafka_protocol,
        "PLAINTEXT",
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    )
    kafka_sasl_mechanism: str = _setting(
        "KAFKA_SASL_MECHANISM", values.sasl_mechanism, "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* protocols)"
    )
    kafka_sasl_username: str = _setting("KAFKA_SASL_USERNAME", values.text, "", "SASL user name")
    kafka_sasl_password: str = _setting("KAFKA_SASL_PASSWORD", values.text, "", "SASL password (or the file below)")
    kafka_sasl_password_file: str = _setting(
        "KAFKA_SASL_PASSWORD_FILE", values.text, "", "File holding the SASL password"
    )
    kafka_tls_ca: str = _setting(
        "KAFKA_TLS_CA", values.text, "", "CA of the brokers (SSL protocols; empty: the system's)"
    )
    kafka_tls_cert: str = _setting("KAFKA_TLS_CERT", values.text, "", "Client certificate for the brokers (mutual TLS)")
    kafka_tls_key: str = _setting("KAFKA_TLS_KEY", values.text, "", "Client key for the brokers (mutual TLS)")
    kafka_idempotence: bool = _setting(
        "KAFKA_IDEMPOTENCE", values.flag, False, "Idempotent producer: on for Apache Kafka, off for tansu"
    )
    kafka_replication_factor: int = _setting(
        "KAFKA_REPLICATION_FACTOR", values.positive_int, 1, "Replication factor of topics created at start"
    )
    storage_url: StorageUrl | None = _setting(
        "STORAGE_URL",
        parse_storage_url,
        None,
        "Where image files live: `file:///dir` or `s3://bucket/prefix` (empty: `file:` IMAGES_UPLOAD_DIR)",
    )
    upload_dir: str = _setting(
        "UPLOAD_DIR",
        values.nonblank,
        "./var/uploads",
        "Storage root when IMAGES_STORAGE_URL is empty (a file:// store)",
    )
    s3_path_style: bool = _setting(
        "S3_PATH_STYLE",
        values.flag,
        False,
        "Path-style S3 addressing (MinIO, moto); off: virtual-hosted, as AWS prefers",
    )
    scratch_dir: str = _setting(
        "SCRATCH_DIR",
        values.nonblank,
        "./var/scratch",
        "Local scratch space of conversions when storage is s3:// (each process its own; nothing kept)",
    )
    base_url: str = _setting(
        "BASE_URL",
        values.base_url,
        "http://127.0.0.1:8080/images/",
        "Public URL prefix of the stored files (required with s3://: the bucket's or its CDN's URL)",
    )
    serve_images: bool = _setting(
        "SERVE_IMAGES", values.flag, True, "Serve /images/ from a file:// store (off behind nginx; never for s3://)"
    )
    max_file_bytes: int = _setting("MAX_FILE_BYTES", values.positive_int, 10 * 1024 * 1024, "Per-file limit")
    max_request_bytes: int = _setting("MAX_REQUEST_BYTES", values.positive_int, 100 * 1024 * 1024, "Per-request limit")
    max_inflight_bytes: int = _setting(
        "MAX_INFLIGHT_BYTES",
        values.positive_int,
        256 * 1024 * 1024,
        "Upload bytes one api process holds at once; past it uploads are answered 503 (one is always admitted)",
    )
    max_inflight_uploads: int = _setting(
        "MAX_INFLIGHT_UPLOADS", values.positive_int, 256, "Uploads one api process handles at once; past it 503"
    )
    max_image_pixels: int = _setting(
        "MAX_IMAGE_PIXELS", values.positive_int, 50_000_000, "Largest width*height accepted"
    )
    variant_widths: VariantWidths = _setting(
        "VARIANT_WIDTHS",
        parse_widths,
        DEFAULT_VARIANT_WIDTHS,
        "Variant widths per reference type, over the defaults: `PRODUCT=320,640;PROFILE=` (empty: none)",
    )
    keep_originals: bool = _setting(
        "KEEP_ORIGINALS", values.flag, False, "Keep the uploaded original after a successful conversion"
    )
    convert_processes: int = _setting(
        "CONVERT_PROCESSES", values.non_negative_int, 0, "Conversion processes per process (0 = CPU count)"
    )
    convert_memory_mb: int = _setting(
        "CONVERT_MEMORY_MB",
        values.positive_int,
        1280,
        "Memory ceiling of each conversion process (50 MP with transparency peaks at ~1170)",
    )
    convert_timeout_s: float = _setting(
        "CONVERT_TIMEOUT_S", values.positive_float, 60.0, "Time limit of one conversion; past it the image ends FAILED"
    )
    convert_max_attempts: int = _setting(
        "CONVERT_MAX_ATTEMPTS",
        values.positive_int,
        3,
        "Deliveries of one image whose conversion never finished (its worker died) before it ends FAILED",
    )
    worker_concurrency: int = _setting(
        "WORKER_CONCURRENCY", values.non_negative_int, 0, "Messages in flight per worker (0 = 2 x conversion processes)"
    )
    worker_app_id: str = _setting("WORKER_APP_ID", values.nonblank, "image-workers", "Faust app id / group")
    worker_rebalance_timeout_s: float = _setting(
        "WORKER_REBALANCE_TIMEOUT_S", values.positive_float, 10.0, "Consumer group rebalance timeout"
    )
    uploaded_partitions: int = _setting(
        "UPLOADED_PARTITIONS", values.positive_int, 12, "Partitions of image-uploaded and image-upload-requested"
    )
    event_partitions: int = _setting(
        "EVENT_PARTITIONS", values.positive_int, 6, "Partitions of image-processed and *-image-changed"
    )
    fetch_allowed_hosts: tuple[str, ...] = _setting(
        "FETCH_ALLOWED_HOSTS", values.hosts, (), "Hosts upload commands may name in sourceUrl (empty: off)"
    )
    fetch_timeout_s: float = _setting("FETCH_TIMEOUT_S", values.positive_float, 10.0, "sourceUrl fetch timeout")
    relay_batch_size: int = _setting("RELAY_BATCH_SIZE", values.positive_int, 500, "Outbox rows per batch")
    relay_poll_interval_s: float = _setting(
        "RELAY_POLL_INTERVAL_S", values.positive_float, 0.01, "Relay poll interval right after work"
    )
    relay_idle_interval_s: float = _setting(
        "RELAY_IDLE_INTERVAL_S", values.positive_float, 0.03, "Longest relay poll interval when idle"
    )
    relay_standby_interval_s: float = _setting(
        "RELAY_STANDBY_INTERVAL_S", values.positive_float, 1.0, "How often a standby relay tries the lock"
    )
    relay_retention_days: float = _setting(
        "RELAY_RETENTION_DAYS", values.positive_float, 7.0, "Published outbox rows are kept this long"
    )
    worker_fetch_max_wait_ms: int = _setting(
        "WORKER_FETCH_MAX_WAIT_MS",
        values.positive_int,
        100,
        "Longest a worker's Kafka fetch waits for records (faust's fixed 1500 held READY back on tansu)",
    )
    worker_metrics_port: int = _setting(
        "WORKER_METRICS_PORT", values.port, 0, "Port of a worker's Prometheus /metrics (0 = off)"
    )
    relay_metrics_port: int = _setting(
        "RELAY_METRICS_PORT", values.port, 0, "Port of the relay's Prometheus /metrics (0 = off)"
    )
    auth: str = _setting(
        "AUTH", values.auth_mode, "off", "Caller authentication: `off` (anonymous) or `jwt` (docs/security.md)"
    )
    auth_jwks_url: str = _setting(
        "AUTH_JWKS_URL", values.http_url, "", "JWKS URL of the token issuer's public keys (jwt; or the secret file)"
    )
    auth_hs256_secret_file: str = _setting(
        "AUTH_HS256_SECRET_FILE", values.text, "", "File holding a shared HS256 secret of >= 32 bytes (jwt)"
    )
    auth_issuer: str = _setting("AUTH_ISSUER", values.text, "", "The `iss` every token must carry (jwt)")
    auth_audience: str = _setting("AUTH_AUDIENCE", values.text, "", "The `aud` every token must carry (jwt)")
    auth_algorithms: tuple[str, ...] = _setting(
        "AUTH_ALGORITHMS",
        values.asymmetric_algorithms,
        ("RS256", "ES256"),
        "Algorithms accepted with JWKS keys (asymmetric only; a secret file means HS256 alone)",
    )
    auth_leeway_s: float = _setting(
        "AUTH_LEEWAY_S", values.non_negative_float, 30.0, "Clock skew allowed on a token's exp and nbf"
    )
    auth_jwks_refresh_s: float = _setting(
        "AUTH_JWKS_REFRESH_S", values.positive_float, 30.0, "Shortest time between JWKS fetches for unknown key ids"
    )
    auth_jwks_max_age_s: float = _setting(
        "AUTH_JWKS_MAX_AGE_S", values.positive_float, 600.0, "The JWKS is fetched again in the background this often"
    )
    quota_images_per_hour: int = _setting(
        "QUOTA_IMAGES_PER_HOUR", values.non_negative_int, 0, "Images per uploader per rolling hour (0 = no limit)"
    )
    quota_bytes_per_hour: int = _setting(
        "QUOTA_BYTES_PER_HOUR", values.non_negative_int, 0, "Bytes per uploader per rolling hour (0 = no limit)"
    )
    quota_images_per_day: int = _setting(
        "QUOTA_IMAGES_PER_DAY", values.non_negative_int, 0, "Images per uploader per rolling day (0 = no limit)"
    )
    quota_bytes_per_day: int = _setting(
        "QUOTA_BYTES_PER_DAY", values.non_negative_int, 0, "Bytes per uploader per rolling day (0 = no limit)"
    )
    cors_origins: tuple[str, ...] = _setting(
        "CORS_ORIGINS", values.origins, (), "Browser origins allowed to call /api/, exact, comma-separated (none)"
    )
    api_metrics_port: int = _setting(
        "API_METRICS_PORT",
        values.port,
        0,
        "Port of the api's /metrics alone (0: on the API port, needing `images:metrics` when IMAGES_AUTH=jwt)",
    )
    log_level: str = _setting("LOG_LEVEL", values.log_level, "INFO", "DEBUG, INFO, WARNING or ERROR")
    log_format: str = _setting("LOG_FORMAT", values.log_format, "auto", "auto (JSON unless a TTY), json, console")

    def __post_init__(self) -> None:
        # The DSN every pool takes carries IMAGES_DB_TLS_*, so replacing those settings reaches it too.
        if self.db_tls_ca:
            tls = DbTls(self.db_tls_ca, self.db_tls_cert or None, self.db_tls_key or None, self.db_tls_verify_identity)
            object.__setattr__(self, "db_dsn", replace(self.db_dsn, tls=tls))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from a mapping; raise SettingsError naming the first bad variable."""
        parsed: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = env.get(name)
            if raw is None:
                continue
            try:
                parsed[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from None
        settings = cls(**parsed)
        check_combinations(settings)
        if not settings.storage.local and PREFIX + "BASE_URL" not in env:
            # The api serves only a file:// store: on S3 the default URL would point at nothing.
            raise SettingsError(
                f"IMAGES_BASE_URL must be set when IMAGES_STORAGE_URL is {settings.storage}: "
                "the public URL of the bucket's prefix, or of the CDN in front of it"
            )
        return settings

    @property
    def quota(self) -> QuotaLimits:
        """Return the uploaders' quotas (each 0 = no limit)."""
        return QuotaLimits(
            images_per_hour=self.quota_images_per_hour,
            bytes_per_hour=self.quota_bytes_per_hour,
            images_per_day=self.quota_images_per_day,
            bytes_per_day=self.quota_bytes_per_day,
        )

    @property
    def storage(self) -> StorageUrl:
        """Return where image files live: IMAGES_STORAGE_URL, or the directory at IMAGES_UPLOAD_DIR."""
        return self.storage_url or StorageUrl.directory(self.upload_dir)

    @property
    def cpu_count(self) -> int:
        """Return the usable core count of this machine."""
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    @property
    def effective_worker_concurrency(self) -> int:
        """Return the worker's messages in flight, resolving 0 to twice the conversion processes.

        Twice: while one message of a pair does its database work, the other keeps the
        conversion process busy (bench/RESULTS.md: 0.75x -> 0.85x of a raw Pillow loop on 1080p).
        """
        return self.worker_concurrency or 2 * self.effective_convert_processes

    @property
    def effective_convert_processes(self) -> int:
        """Return the conversion pool size, resolving 0 to the core count."""
        return self.convert_processes or self.cpu_count
