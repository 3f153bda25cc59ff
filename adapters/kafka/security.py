"""How every Kafka client of the service connects (issue 27): TLS and SASL from the IMAGES_KAFKA_* settings.

`client_auth(settings)` is the one place the security settings become client arguments: the
relay's producer, the admin client, the health probe and `watch` pass them to aiokafka as they
are, and the workers give Faust the same through `faust_credentials`, which Faust turns back
into exactly these arguments (a test checks the round trip). Hostname verification is always
on; an empty IMAGES_KAFKA_TLS_CA means the system's CA store (managed clusters' certificates
are signed by public CAs).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import sys
from typing import Any

import aiokafka.errors
import structlog
from aiokafka.conn import create_conn

from core.settings import Settings, SettingsError


@functools.cache
def tls_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    """A client context verifying the brokers (and presenting a client certificate when given)."""
    try:
        context = ssl.create_default_context(cafile=ca or None)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"IMAGES_KAFKA_TLS_CA={ca!r} cannot be used: {exc}") from None
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if cert:
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"IMAGES_KAFKA_TLS_CERT/IMAGES_KAFKA_TLS_KEY cannot be used: {exc}") from None
    return context


def client_auth(settings: Settings) -> dict[str, Any]:
    """The security arguments of an aiokafka client (producer, consumer, admin, plain client)."""
    protocol = settings.kafka_security_protocol
    auth: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        auth["ssl_context"] = tls_context(settings.kafka_tls_ca, settings.kafka_tls_cert, settings.kafka_tls_key)
    if protocol.startswith("SASL_"):
        auth |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password,
        }
    return auth


def faust_credentials(settings: Settings) -> Any:
    """The same security for Faust's `broker_credentials` (None: PLAINTEXT)."""
    import faust  # here: the api and the relay use this module and never Faust

    auth = client_auth(settings)
    if auth["security_protocol"] == "SSL":
        return faust.SSLCredentials(auth["ssl_context"])
    if auth["security_protocol"].startswith("SASL_"):
        return faust.SASLCredentials(
            username=auth["sasl_plain_username"],
            password=auth["sasl_plain_password"],
            ssl_context=auth.get("ssl_context"),
            mechanism=auth["sasl_mechanism"],
        )
    return None


class BrokerRefused(Exception):
    """A broker refused this client's TLS or SASL login: a setting to fix, not an outage to wait out."""


# What a broker answers a login it refuses with (Apache Kafka's SaslAuthenticate error codes), and
# what aiokafka raises on a SCRAM server-final message carrying an error instead of a signature.
_LOGIN_REFUSED = (
    aiokafka.errors.SaslAuthenticationFailed,
    aiokafka.errors.AuthenticationFailedError,
    aiokafka.errors.UnsupportedSaslMechanismError,
    aiokafka.errors.IllegalSaslStateError,
    aiokafka.errors.AuthenticationMethodNotSupported,
)


async def check_login(settings: Settings, *, timeout_s: float = 5.0) -> None:
    """Connect to the first bootstrap broker as every client does; BrokerRefused if TLS or the login fails.

    aiokafka reports a failed handshake or a refused login only as "Unable to bootstrap", the
    same as a broker that is down; this look tells them apart before a process starts waiting
    (or crashing), and tells the health answer why. A broker that does not answer at all (or
    closes the connection without saying why) is left to the caller's waiting.
    """
    auth = client_auth(settings)
    if auth["security_protocol"] == "PLAINTEXT":
        return
    host, _, port = settings.kafka_bootstrap.split(",")[0].strip().rpartition(":")
    where = f"{host}:{port}"
    try:
        connection = await asyncio.wait_for(
            create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000), **auth), timeout_s
        )
    except ssl.SSLError as exc:
        raise BrokerRefused(f"TLS to {where} failed: {exc}") from None
    except _LOGIN_REFUSED as exc:
        raise BrokerRefused(f"{settings.kafka_sasl_mechanism} login to {where} refused: {exc}") from None
    except (KeyError, ValueError) as exc:  # aiokafka's SCRAM reading an error ("e=...") as a signature
        raise BrokerRefused(f"{settings.kafka_sasl_mechanism} login to {where} refused ({exc!r})") from None
    except (OSError, TimeoutError, aiokafka.errors.KafkaError):
        return  # not answering, or closed without a reason: an outage, which the caller waits out
    connection.close()


def stop_if_refused(settings: Settings, process: str) -> None:
    """Stop a process at start with one `kafka_refused` line (exit 2) when TLS does not verify or the login is refused.

    Not a traceback at each restart (Faust's), nor a retry line every few seconds forever (the relay's).
    """
    try:
        asyncio.run(check_login(settings))
    except BrokerRefused as exc:
        structlog.get_logger(process).error("kafka_refused", error=str(exc))
        sys.exit(2)
