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

import structlog

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
    """A broker refused this client's TLS: a setting to fix, not an outage to wait out."""


async def check_tls(settings: Settings, *, timeout_s: float = 5.0) -> None:
    """Shake hands with the first bootstrap broker over TLS; BrokerRefused if it does not verify.

    aiokafka reports a failed handshake only as "Unable to bootstrap", the same as a broker that
    is down; this look tells the two apart before a process starts waiting (or crashing).
    A broker that does not answer at all is left to the caller's waiting.
    """
    if not settings.kafka_security_protocol.endswith("SSL"):
        return
    host, _, port = settings.kafka_bootstrap.split(",")[0].strip().rpartition(":")
    context = client_auth(settings)["ssl_context"]
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port), ssl=context), timeout_s)
    except ssl.SSLError as exc:
        raise BrokerRefused(f"TLS to {host}:{port} failed: {exc}") from None
    except (OSError, TimeoutError):
        return  # not answering: an outage, which the caller waits out
    writer.close()


def stop_if_refused(settings: Settings, process: str) -> None:
    """Stop a process at start with one `kafka_refused` line (exit 2) when the broker's TLS does not verify.

    Not a traceback at each restart (Faust's), nor a retry line every few seconds forever (the relay's).
    """
    try:
        asyncio.run(check_tls(settings))
    except BrokerRefused as exc:
        structlog.get_logger(process).error("kafka_refused", error=str(exc))
        sys.exit(2)
