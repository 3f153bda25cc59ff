"""The repositories of one transaction: consumer dedupe and idempotency answers here, images' in
repositories.py, the outbox's in outbox_table.py."""

from __future__ import annotations

from datetime import datetime

from adapters.db.outbox_table import MariaDbOutbox
from adapters.db.quotas import MariaDbQuotas
from adapters.db.repositories import MariaDbImages, Repository, db_time
from adapters.db.statements import Statements, Table
from core.idempotency import IdempotentRequest, StoredAnswer

SELECT_PROCESSED = "SELECT 1 FROM processed_events WHERE consumer = %s AND event_id = %s"
PROCESSED_EVENTS = Table("processed_events", ("consumer", "event_id", "processed_at", "outcome", "detail"))


class MariaDbProcessedEvents(Repository):
    """Consumer dedupe rows, written in the consumer's transaction."""

    async def seen(self, consumer: str, event_id: str) -> bool:
        return bool(await self._tx.fetchall(SELECT_PROCESSED, (consumer, event_id)))

    async def record(self, consumer: str, event_id: str, *, outcome: str, detail: str | None, at: datetime) -> None:
        self._tx.insert(
            PROCESSED_EVENTS, [(consumer, event_id, db_time(at), outcome, detail[:1000] if detail else None)]
        )


IDEMPOTENCY_KEYS = Table(
    "idempotency_keys", ("key_hash", "scope", "fingerprint", "response_status", "response_body", "created_at")
)


class MariaDbIdempotencyKeys(Repository):
    """Answers to keyed requests: a plain INSERT, so a second commit under one key fails on the primary key."""

    async def remember(self, request: IdempotentRequest, answer: StoredAnswer, at: datetime) -> None:
        self._tx.insert(
            IDEMPOTENCY_KEYS,
            [(request.key_hash, request.scope, request.fingerprint, answer.status, answer.body.decode(), db_time(at))],
        )


def repositories(
    tx: Statements,
) -> tuple[MariaDbImages, MariaDbOutbox, MariaDbProcessedEvents, MariaDbIdempotencyKeys, MariaDbQuotas]:
    """The repositories of one transaction, all writing through `tx`."""
    return (
        MariaDbImages(tx),
        MariaDbOutbox(tx),
        MariaDbProcessedEvents(tx),
        MariaDbIdempotencyKeys(tx),
        MariaDbQuotas(tx),
    )
