"""The files the settings name, read at start (issue 27): secrets, and the TLS files checked.

Docker and Kubernetes secrets are files, not environment values. `IMAGES_DB_PASSWORD_FILE` and
`IMAGES_KAFKA_SASL_PASSWORD_FILE` are read once, at start, into the settings (over the DSN's
password, over IMAGES_KAFKA_SASL_PASSWORD); the JWT secret file is read by
adapters/auth/tokens.py. The TLS contexts of MariaDB and Kafka are built here once, so a CA,
certificate or key that cannot be used stops the process at start naming its variable, rather
than at its first connection. The values never reach a log line: DbDsn renders without its
password, and no setting holding a secret is logged.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from adapters.db import tls
from adapters.kafka.security import tls_context
from core.settings import Settings, SettingsError

MAX_SECRET_BYTES = 64 * 1024


def read_secret_bytes(variable: str, path: str) -> bytes:
    """The secret in a file (at most 64 KiB), its final newline dropped; SettingsError naming the variable."""
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"{variable}={path!r} cannot be read: {exc.strerror}") from None
    if len(data) > MAX_SECRET_BYTES:
        raise SettingsError(f"{variable}={path!r} is over {MAX_SECRET_BYTES} bytes: not a secret")
    secret = data.rstrip(b"\r\n")
    if not secret:
        raise SettingsError(f"{variable}={path!r} is empty")
    return secret


def read_secret_file(variable: str, path: str) -> str:
    """The secret in a file as text (a password)."""
    try:
        return read_secret_bytes(variable, path).decode("utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"{variable}={path!r} is not UTF-8 text") from None


def load_files(settings: Settings) -> Settings:
    """The settings with the secrets their *_FILE settings name read in, once their TLS files are known good."""
    if settings.db_dsn.tls is not None:
        tls.ssl_context(settings.db_dsn.tls)
    if settings.kafka_security_protocol.endswith("SSL"):
        tls_context(settings.kafka_tls_ca, settings.kafka_tls_cert, settings.kafka_tls_key)
    if settings.db_password_file:
        password = read_secret_file("IMAGES_DB_PASSWORD_FILE", settings.db_password_file)
        settings = replace(settings, db_dsn=replace(settings.db_dsn, password=password))
    if settings.kafka_sasl_password_file:
        password = read_secret_file("IMAGES_KAFKA_SASL_PASSWORD_FILE", settings.kafka_sasl_password_file)
        settings = replace(settings, kafka_sasl_password=password)
    return settings
