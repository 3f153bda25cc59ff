from __future__ import annotations

import re

import pytest

from core.dsn import parse_dsn
from core.settings import Settings, SettingsError
from core.storage import StorageUrl, parse_storage_url
from tests.processes import documented_settings, dsn_url


def test_defaults_suit_a_local_run() -> None:
    s = Settings.from_env({})
    assert (s.api_host, s.api_port) == ("127.0.0.1", 8080)
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert (s.db_dsn.host, s.db_dsn.port, s.db_dsn.database) == ("127.0.0.1", 3306, "images")
    assert s.upload_dir == "./var/uploads"
    assert s.base_url == "http://127.0.0.1:8080/images/"
    assert s.kafka_idempotence is False


def test_every_variable_is_read_with_its_type() -> None:
    s = Settings.from_env(
        {
            "IMAGES_API_PORT": "9000",
            "IMAGES_DB_DSN": "mysql://app:s%40cret@db.internal:3307/imgs",
            "IMAGES_KAFKA_IDEMPOTENCE": "true",
            "IMAGES_FETCH_ALLOWED_HOSTS": "cdn.example.com, Static.Example.com",
            "IMAGES_RELAY_POLL_INTERVAL_S": "0.5",
            "IMAGES_BASE_URL": "https://img.example.com/images",
        }
    )
    assert s.api_port == 9000
    assert (s.db_dsn.user, s.db_dsn.password, s.db_dsn.host, s.db_dsn.port) == ("app", "s@cret", "db.internal", 3307)
    assert s.kafka_idempotence is True
    assert s.fetch_allowed_hosts == ("cdn.example.com", "static.example.com")
    assert s.relay_poll_interval_s == 0.5
    assert s.base_url == "https://img.example.com/images/"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IMAGES_API_PORT", "eighty"),
        ("IMAGES_API_PORT", "70000"),
        ("IMAGES_DB_DSN", "postgres://x@y/z"),
        ("IMAGES_DB_DSN", "mysql://host-without-db"),
        ("IMAGES_KAFKA_IDEMPOTENCE", "maybe"),
        ("IMAGES_MAX_FILE_BYTES", "0"),
        ("IMAGES_RELAY_POLL_INTERVAL_S", "-1"),
        ("IMAGES_BASE_URL", "ftp://x/"),
        ("IMAGES_LOG_LEVEL", "LOUD"),
        ("IMAGES_KAFKA_BOOTSTRAP", "  "),
        ("IMAGES_AUTH", "basic"),
        ("IMAGES_AUTH_ALGORITHMS", "HS256"),
        ("IMAGES_AUTH_ALGORITHMS", "none"),
        ("IMAGES_AUTH_ALGORITHMS", "RS256,HS512"),
        ("IMAGES_AUTH_JWKS_URL", "file:///etc/keys.json"),
        ("IMAGES_CORS_ORIGINS", "https://app.example.com/path"),
        ("IMAGES_CORS_ORIGINS", "*"),
        ("IMAGES_QUOTA_IMAGES_PER_HOUR", "-1"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_dsn_renders_without_its_password() -> None:
    assert "secret" not in str(parse_dsn("mysql://u:secret@h/db"))


def test_every_setting_is_documented_with_a_variable_name() -> None:
    names = [row[0] for row in documented_settings()]
    assert all(n.startswith("IMAGES_") for n in names)
    assert len(names) == len(set(names))


def test_the_settings_page_lists_every_setting_and_the_readme_only_real_ones() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    documented = {name for name, _, _ in documented_settings()}
    table = re.findall(r"^\| `(IMAGES_[A-Z0-9_]+)`", (root / "docs" / "settings.md").read_text(), flags=re.MULTILINE)
    assert sorted(table) == sorted(documented)
    most_used = re.findall(r"^\| `(IMAGES_[A-Z0-9_]+)`", (root / "README.md").read_text(), flags=re.MULTILINE)
    assert most_used and set(most_used) <= documented


def test_dsn_takes_a_unix_socket_and_renders_back() -> None:
    dsn = parse_dsn("mysql://app:p%40ss@db:3307/imgs?unix_socket=/run/mysqld/mysqld.sock")
    assert dsn.unix_socket == "/run/mysqld/mysqld.sock"
    assert parse_dsn(dsn_url(dsn)) == dsn


def test_dsn_refuses_unknown_options() -> None:
    with pytest.raises(SettingsError, match="IMAGES_DB_DSN"):
        Settings.from_env({"IMAGES_DB_DSN": "mysql://h/db?sslmode=off"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("file:///srv/images", StorageUrl("file", "/srv/images")),
        ("file:var/uploads", StorageUrl("file", "var/uploads")),
        ("file://localhost/srv/images", StorageUrl("file", "/srv/images")),
        ("s3://images", StorageUrl("s3", "images")),
        ("s3://my.images-1/prod/eu/", StorageUrl("s3", "my.images-1", "prod/eu")),
    ],
)
def test_a_storage_url_names_a_directory_or_a_bucket_and_renders_back(raw: str, expected: StorageUrl) -> None:
    parsed = parse_storage_url(raw)
    assert parsed == expected
    assert parse_storage_url(str(parsed)) == parsed


@pytest.mark.parametrize(
    "raw",
    [
        "s3://Images",  # upper case
        "s3://ab",  # too short
        "s3://-images",
        "s3://im..ages",
        "s3://images/../other",
        "s3://images/a//b",
        "s3://images/" + "p" * 300,
        "s3://images/x?versionId=1",
        "file://otherhost/srv",
        "file://",
        "ftp://images",
        "images",
    ],
)
def test_a_bad_storage_url_fails_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError, match="IMAGES_STORAGE_URL"):
        Settings.from_env({"IMAGES_STORAGE_URL": raw, "IMAGES_BASE_URL": "https://cdn.example.com/"})


def test_without_a_storage_url_files_live_under_the_upload_dir() -> None:
    assert Settings.from_env({"IMAGES_UPLOAD_DIR": "/srv/up"}).storage == StorageUrl("file", "/srv/up")


def test_s3_storage_needs_its_public_url_named() -> None:
    with pytest.raises(SettingsError, match="IMAGES_BASE_URL must be set when IMAGES_STORAGE_URL is s3://images/p"):
        Settings.from_env({"IMAGES_STORAGE_URL": "s3://images/p"})
    s = Settings.from_env({"IMAGES_STORAGE_URL": "s3://images/p", "IMAGES_BASE_URL": "https://cdn.example.com/p"})
    assert (s.storage.bucket, s.storage.prefix, s.base_url) == ("images", "p", "https://cdn.example.com/p/")


JWT = {"IMAGES_AUTH": "jwt", "IMAGES_AUTH_ISSUER": "https://id.example.com/", "IMAGES_AUTH_AUDIENCE": "images"}


def test_authentication_is_off_by_default_and_jwt_reads_its_settings() -> None:
    assert Settings.from_env({}).auth == "off"
    s = Settings.from_env(
        JWT
        | {
            "IMAGES_AUTH_JWKS_URL": "https://id.example.com/jwks",
            "IMAGES_CORS_ORIGINS": "https://App.example.com, http://localhost:3000",
        }
    )
    assert (s.auth, s.auth_jwks_url, s.auth_algorithms) == ("jwt", "https://id.example.com/jwks", ("RS256", "ES256"))
    assert s.cors_origins == ("https://app.example.com", "http://localhost:3000")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (JWT, "IMAGES_AUTH_JWKS_URL"),
        (
            JWT | {"IMAGES_AUTH_JWKS_URL": "https://k", "IMAGES_AUTH_HS256_SECRET_FILE": "/run/secrets/jwt"},
            "IMAGES_AUTH_HS256_SECRET_FILE",
        ),
        ({**JWT, "IMAGES_AUTH_ISSUER": "", "IMAGES_AUTH_JWKS_URL": "https://k"}, "IMAGES_AUTH_ISSUER"),
        ({**JWT, "IMAGES_AUTH_AUDIENCE": " ", "IMAGES_AUTH_JWKS_URL": "https://k"}, "IMAGES_AUTH_AUDIENCE"),
    ],
)
def test_jwt_without_one_key_source_an_issuer_or_an_audience_fails_at_start(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_quotas_are_off_until_one_is_set() -> None:
    assert not Settings.from_env({}).quota.active
    quota = Settings.from_env({"IMAGES_QUOTA_BYTES_PER_DAY": "1000000"}).quota
    assert quota.active and quota.bytes_per_day == 1_000_000 and quota.images_per_hour == 0
