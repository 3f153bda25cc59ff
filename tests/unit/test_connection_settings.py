"""TLS and SASL settings (issue 27): combinations refused at start, and one set of client arguments for all."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from adapters.kafka.security import client_auth, faust_credentials, tls_context
from adapters.settings_files import load_files
from core.settings import Settings, SettingsError

SASL = {
    "IMAGES_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "IMAGES_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "IMAGES_KAFKA_SASL_USERNAME": "images",
    "IMAGES_KAFKA_SASL_PASSWORD": "s3cret",
}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"IMAGES_KAFKA_SASL_MECHANISM": "PLAIN"}, "IMAGES_KAFKA_SASL_MECHANISM"),
        ({"IMAGES_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "IMAGES_KAFKA_SASL_MECHANISM"),
        ({**SASL, "IMAGES_KAFKA_SASL_USERNAME": ""}, "IMAGES_KAFKA_SASL_USERNAME"),
        ({**SASL, "IMAGES_KAFKA_SASL_PASSWORD": ""}, "IMAGES_KAFKA_SASL_PASSWORD"),
        ({"IMAGES_KAFKA_TLS_CA": "/ca.pem"}, "IMAGES_KAFKA_TLS_CA"),
        (
            {**SASL, "IMAGES_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "IMAGES_KAFKA_TLS_CA": "/ca.pem"},
            "IMAGES_KAFKA_TLS_CA",
        ),
        ({"IMAGES_KAFKA_SECURITY_PROTOCOL": "SSL", "IMAGES_KAFKA_TLS_CERT": "/c.pem"}, "IMAGES_KAFKA_TLS_KEY"),
        ({"IMAGES_KAFKA_SECURITY_PROTOCOL": "TLS"}, "IMAGES_KAFKA_SECURITY_PROTOCOL"),
        ({"IMAGES_KAFKA_SASL_MECHANISM": "GSSAPI"}, "IMAGES_KAFKA_SASL_MECHANISM"),
        ({"IMAGES_DB_TLS_CERT": "/c.pem", "IMAGES_DB_TLS_KEY": "/k.pem"}, "IMAGES_DB_TLS_CA"),
        ({"IMAGES_DB_TLS_CA": "/ca.pem", "IMAGES_DB_TLS_KEY": "/k.pem"}, "IMAGES_DB_TLS_CERT"),
    ],
)
def test_a_combination_that_cannot_work_stops_at_start_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_the_db_tls_settings_ride_on_the_dsn_every_pool_takes() -> None:
    s = Settings.from_env({"IMAGES_DB_TLS_CA": "/run/ca.pem", "IMAGES_DB_TLS_VERIFY_IDENTITY": "false"})
    assert s.db_dsn.tls is not None and (s.db_dsn.tls.ca, s.db_dsn.tls.verify_identity) == ("/run/ca.pem", False)
    assert replace(s.db_dsn, database="other").tls == s.db_dsn.tls
    assert Settings.from_env({}).db_dsn.tls is None


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"IMAGES_KAFKA_SECURITY_PROTOCOL": "SSL"},
        SASL,
        {**SASL, "IMAGES_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "IMAGES_KAFKA_SASL_MECHANISM": "PLAIN"},
    ],
    ids=["plaintext", "ssl", "sasl-ssl-scram", "sasl-plaintext-plain"],
)
def test_faust_is_given_exactly_what_every_aiokafka_client_gets(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    given_to_faust = credentials_to_aiokafka_auth(faust_credentials(settings))  # what Faust passes on to aiokafka
    assert {k: v for k, v in given_to_faust.items() if v is not None} == client_auth(settings)


def test_tls_to_the_brokers_always_verifies_their_names() -> None:
    context = client_auth(Settings.from_env({"IMAGES_KAFKA_SECURITY_PROTOCOL": "SSL"}))["ssl_context"]
    assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"


def test_an_unreadable_kafka_ca_stops_at_start_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="IMAGES_KAFKA_TLS_CA"):
        tls_context(str(tmp_path / "absent.pem"), "", "")


def test_secret_files_are_read_at_start_and_an_unreadable_one_names_its_variable(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("db-pass\n")
    (tmp_path / "kafka").write_text("kafka-pass\n")
    env = {
        **SASL,
        "IMAGES_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "IMAGES_KAFKA_SASL_PASSWORD": "",
        "IMAGES_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "kafka"),
        "IMAGES_DB_PASSWORD_FILE": str(tmp_path / "db"),
    }
    loaded = load_files(Settings.from_env(env))
    assert (loaded.db_dsn.password, loaded.kafka_sasl_password) == ("db-pass", "kafka-pass")
    assert "db-pass" not in str(loaded.db_dsn)
    with pytest.raises(SettingsError, match="IMAGES_DB_PASSWORD_FILE"):
        load_files(Settings.from_env({"IMAGES_DB_PASSWORD_FILE": str(tmp_path / "absent")}))


def test_a_secret_file_is_read_up_to_64_kib_and_an_empty_one_is_refused(tmp_path: Path) -> None:
    (tmp_path / "huge").write_bytes(b"x" * (64 * 1024 + 1))
    (tmp_path / "empty").write_bytes(b"\n")
    for name in ("huge", "empty"):
        with pytest.raises(SettingsError, match="IMAGES_DB_PASSWORD_FILE"):
            load_files(Settings.from_env({"IMAGES_DB_PASSWORD_FILE": str(tmp_path / name)}))
