"""Parsers of setting values: each returns the value or raises ValueError saying what was expected."""

from __future__ import annotations

from urllib.parse import urlsplit


def flag(raw: str) -> bool:
    """`true`/`false` (also 1/0, yes/no, on/off)."""
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false")


def positive_int(raw: str) -> int:
    """An integer > 0."""
    value = int(raw)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def non_negative_int(raw: str) -> int:
    """An integer >= 0."""
    value = int(raw)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def positive_float(raw: str) -> float:
    """A number > 0."""
    value = float(raw)
    if not value > 0:
        raise ValueError("must be > 0")
    return value


def port(raw: str) -> int:
    """A TCP port (0-65535)."""
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a TCP port (0-65535)")
    return value


def base_url(raw: str) -> str:
    """An http(s) URL, ending in `/`."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an http(s) URL")
    return raw if raw.endswith("/") else raw + "/"


def hosts(raw: str) -> tuple[str, ...]:
    """Host names, comma-separated, lower-cased."""
    return tuple(h.strip().lower() for h in raw.split(",") if h.strip())


def log_level(raw: str) -> str:
    """DEBUG, INFO, WARNING or ERROR."""
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return level


def log_format(raw: str) -> str:
    """auto, json or console."""
    value = raw.strip().lower()
    if value not in ("auto", "json", "console"):
        raise ValueError("expected auto, json or console")
    return value


def nonblank(raw: str) -> str:
    """A value with something in it, stripped."""
    if not raw.strip():
        raise ValueError("must not be blank")
    return raw.strip()


def non_negative_float(raw: str) -> float:
    """A number >= 0."""
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be >= 0")
    return value


def auth_mode(raw: str) -> str:
    """`off` or `jwt`."""
    value = raw.strip().lower()
    if value not in ("off", "jwt"):
        raise ValueError("expected off or jwt")
    return value


def http_url(raw: str) -> str:
    """An http(s) URL, or empty."""
    if raw.strip() and urlsplit(raw.strip()).scheme not in ("http", "https"):
        raise ValueError("expected an http(s) URL")
    return raw.strip()


ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


def asymmetric_algorithms(raw: str) -> tuple[str, ...]:
    """JWS algorithms of public keys, comma-separated: never `none` or an HMAC (no RS/HS confusion)."""
    names = tuple(a.strip() for a in raw.split(",") if a.strip())
    wrong = [a for a in names if a not in ASYMMETRIC_ALGORITHMS]
    if wrong or not names:
        raise ValueError(f"expected some of {', '.join(ASYMMETRIC_ALGORITHMS)}")
    return names


def origins(raw: str) -> tuple[str, ...]:
    """Browser origins (`scheme://host[:port]`, no path), comma-separated."""
    found = []
    for item in (o.strip() for o in raw.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise ValueError(f"{item!r} is not an origin (scheme://host[:port])")
        found.append(item.lower())
    return tuple(found)


def text(raw: str) -> str:
    """Any value, stripped; empty means unset."""
    return raw.strip()


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def kafka_protocol(raw: str) -> str:
    """A Kafka security protocol."""
    value = raw.strip().upper()
    if value not in KAFKA_PROTOCOLS:
        raise ValueError(f"expected one of {', '.join(KAFKA_PROTOCOLS)}")
    return value


def sasl_mechanism(raw: str) -> str:
    """A SASL mechanism, or empty."""
    value = raw.strip().upper()
    if value and value not in SASL_MECHANISMS:
        raise ValueError(f"expected one of {', '.join(SASL_MECHANISMS)}")
    return value
