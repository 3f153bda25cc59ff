"""A thin aiokafka layer: the producer (acks=all, idempotence a setting), topics, and a probe."""

from __future__ import annotations

import asyncio

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import TopicAlreadyExistsError

from adapters.kafka.security import check_login, client_auth
from core.events import IMAGE_UPLOADED_TOPIC, UPLOAD_REQUESTED_TOPIC, all_topics
from core.references import RULES
from core.settings import Settings

log = structlog.get_logger(__name__)

# Envelopes are small; anything over this is a bug upstream and is failed by the relay, not retried.
MAX_MESSAGE_BYTES = 1024 * 1024


def create_producer(settings: Settings) -> AIOKafkaProducer:
    """Build (not start) the producer every publisher uses.

    acks=all; idempotence from IMAGES_KAFKA_IDEMPOTENCE: Apache Kafka supports it, the local
    tansu broker does not (InitProducerId fails there).
    """
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        linger_ms=0,
        max_request_size=MAX_MESSAGE_BYTES,
        request_timeout_ms=10_000,
        retry_backoff_ms=100,
        client_id="image-server",
        **client_auth(settings),
    )


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Return every topic of the service with its partition count."""
    counts = {name: settings.event_partitions for name in all_topics([r.value for r in RULES])}
    counts[IMAGE_UPLOADED_TOPIC] = settings.uploaded_partitions
    counts[UPLOAD_REQUESTED_TOPIC] = settings.uploaded_partitions
    return counts


async def ensure_topics(settings: Settings, topics: dict[str, int] | None = None) -> list[str]:
    """Create the missing topics with their partition counts; return the names created."""
    wanted = topics if topics is not None else topic_partitions(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000, **client_auth(settings)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=n, replication_factor=settings.kafka_replication_factor)
            for name, n in wanted.items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them first: the outcome we wanted
        created = [t.name for t in missing]
        if created:
            log.info("topics_created", topics=created)
        return created
    finally:
        await admin.close()


async def probe(settings: Settings, *, timeout_s: float = 2.0) -> int:
    """Fetch cluster metadata over a fresh connection; return the broker count or raise.

    A failed bootstrap is looked at once more (`check_login`) so that a refused TLS handshake or
    login is said as such (BrokerRefused), not as aiokafka's "Unable to bootstrap".
    """
    client = AIOKafkaClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=int(timeout_s * 1000), **client_auth(settings)
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return len(client.cluster.brokers())
    except Exception:  # aiokafka's "Unable to bootstrap", or its SCRAM failing on a refusal (KeyError)
        await check_login(settings, timeout_s=timeout_s)
        raise
    finally:
        await client.close()
