"""The checks of settings that go together (auth, TLS, SASL): each failure names the variable to fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def check_combinations(settings: Settings) -> None:
    """Refuse settings that cannot work together."""
    check_auth(settings)
    check_connections(settings)


def check_auth(settings: Settings) -> None:
    """Refuse an IMAGES_AUTH=jwt without a key source, issuer and audience, naming the variable."""
    if settings.auth != "jwt":
        return
    if bool(settings.auth_jwks_url) == bool(settings.auth_hs256_secret_file):
        raise SettingsError(
            "IMAGES_AUTH=jwt needs exactly one of IMAGES_AUTH_JWKS_URL and IMAGES_AUTH_HS256_SECRET_FILE"
        )
    for name, value in (("ISSUER", settings.auth_issuer), ("AUDIENCE", settings.auth_audience)):
        if not value:
            raise SettingsError(f"IMAGES_AUTH=jwt needs IMAGES_AUTH_{name}: tokens are checked against it")


def check_connections(settings: Settings) -> None:
    """Refuse TLS and SASL settings that cannot go together, naming the variable."""
    protocol = settings.kafka_security_protocol
    if settings.kafka_sasl_mechanism and not protocol.startswith("SASL_"):
        raise SettingsError(f"IMAGES_KAFKA_SASL_MECHANISM needs IMAGES_KAFKA_SECURITY_PROTOCOL SASL_*, not {protocol}")
    if protocol.startswith("SASL_"):
        if not settings.kafka_sasl_mechanism:
            raise SettingsError(f"IMAGES_KAFKA_SECURITY_PROTOCOL={protocol} needs IMAGES_KAFKA_SASL_MECHANISM")
        if not settings.kafka_sasl_username:
            raise SettingsError(f"IMAGES_KAFKA_SECURITY_PROTOCOL={protocol} needs IMAGES_KAFKA_SASL_USERNAME")
        if not (settings.kafka_sasl_password or settings.kafka_sasl_password_file):
            raise SettingsError(
                f"IMAGES_KAFKA_SECURITY_PROTOCOL={protocol} needs IMAGES_KAFKA_SASL_PASSWORD or _PASSWORD_FILE"
            )
    tls_files = {"KAFKA_TLS_CA": settings.kafka_tls_ca, "KAFKA_TLS_CERT": settings.kafka_tls_cert}
    tls_files["KAFKA_TLS_KEY"] = settings.kafka_tls_key
    for name, value in tls_files.items():
        if value and not protocol.endswith("SSL"):
            raise SettingsError(f"IMAGES_{name} needs IMAGES_KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL, not {protocol}")
    for prefix, cert, key in (
        ("KAFKA", settings.kafka_tls_cert, settings.kafka_tls_key),
        ("DB", settings.db_tls_cert, settings.db_tls_key),
    ):
        if bool(cert) != bool(key):
            raise SettingsError(f"IMAGES_{prefix}_TLS_CERT and IMAGES_{prefix}_TLS_KEY go together")
    if (settings.db_tls_cert or settings.db_tls_key) and not settings.db_tls_ca:
        raise SettingsError("IMAGES_DB_TLS_CERT needs IMAGES_DB_TLS_CA: TLS to MariaDB starts with its CA")
