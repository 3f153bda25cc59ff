"""The relay loop: claim, publish, mark, commit.

Delivery is **at least once**. A row is marked PUBLISHED only after the broker acknowledged it
(acks=all); a relay that dies between the acknowledgement and the commit of the mark publishes
the row again, with the same eventId, when it or another relay takes over. Consumers dedupe by
eventId (docs/events.md).

Ordering: rows are claimed and sent in id order, and a key's rows are written under that key's
lock, so per key the id order is the commit order. A key whose row failed to publish has none of
its later rows marked in that batch, so a retry can only repeat messages, never reorder them.

Several replicas: exactly one is active. It holds a MariaDB `GET_LOCK` on a dedicated
connection; the others stand by and try the lock every `relay_standby_interval_s`. A lock dies with
its connection, so a killed or partitioned relay hands over within about that interval. We chose
one active relay over disjoint key shards because it needs no shard assignment, keeps every key in
commit order without coordination, and one relay publishes far more rows/s than the service writes
(bench/RESULTS.md); the standbys are for availability, not throughput.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomysql
import structlog
from aiokafka import AIOKafkaProducer

from adapters.db import outbox_table
from adapters.db.leader_lock import LeaderLock
from adapters.db.statements import Pipeline
from adapters.kafka import client as kafka_adapter
from core.settings import Settings
from outbox import metrics
from outbox.settle import BatchOutcome, Row, settle

log = structlog.get_logger("outbox.relay")

LOCK_PREFIX = "image_server_outbox_relay:"
RETENTION_EVERY_S = 60.0
LAG_EVERY_S = 10.0
MAX_BACKOFF_S = 5.0


class Relay:
    """One relay replica: stands by until it holds the lock, then publishes until stopped."""

    def __init__(self, settings: Settings, pool: aiomysql.Pool, producer: AIOKafkaProducer) -> None:
        self._settings = settings
        self._pool = pool
        self._producer = producer
        self._stop = asyncio.Event()
        self._producer_started = False
        # GET_LOCK names are server-wide: scope the lock to this database.
        self.lock = LeaderLock(settings.db_dsn, LOCK_PREFIX + settings.db_dsn.database)
        self._last_retention = 0.0
        self._last_lag = 0.0

    def stop(self) -> None:
        """Ask the loop to finish the batch in flight and return."""
        self._stop.set()

    async def run(self) -> None:
        """Run until stop(): stand by, lead, and fall back to standby if the lock is lost."""
        backoff = self._settings.relay_poll_interval_s
        standing_by = False
        while not self._stop.is_set():
            try:
                if await self._acquire_lock():
                    backoff = self._settings.relay_poll_interval_s
                    standing_by = False
                    await self._lead()
                else:
                    if not standing_by:  # once per stay: the replica is up and waits for the lock
                        log.info("relay_standing_by", lock=self.lock.name)
                        standing_by = True
                    await self._sleep(self._settings.relay_standby_interval_s)
            except Exception as exc:
                # Never crash the loop: a DB or broker outage is waited out and retried.
                log.warning("relay_error", error=f"{type(exc).__name__}: {exc}", retry_in_s=round(backoff, 3))
                await self._release_lock()
                await self._sleep(backoff)
                backoff = min(backoff * 2 + 0.05, MAX_BACKOFF_S)
        await self._release_lock()

    async def _lead(self) -> None:
        log.info("relay_became_active", lock=self.lock.name)
        await self._start_producer()
        interval = self._settings.relay_poll_interval_s
        publish_backoff = self._settings.relay_poll_interval_s
        while not self._stop.is_set():
            outcome = await self.publish_batch()
            await self._housekeeping()
            if outcome is None:  # nothing pending: back off towards the idle interval
                await self._sleep(interval)
                interval = min(interval * 2, self._settings.relay_idle_interval_s)
            elif outcome.retry:
                log.warning(
                    "outbox_publish_retrying",
                    retrying=len(outcome.retry),
                    error=outcome.error,
                    retry_in_s=round(publish_backoff, 3),
                )
                await self._sleep(publish_backoff)
                publish_backoff = min(publish_backoff * 2 + 0.05, MAX_BACKOFF_S)
            else:
                interval = publish_backoff = self._settings.relay_poll_interval_s
                if len(outcome.published) + len(outcome.failed) < self._settings.relay_batch_size:
                    await self._sleep(interval)

    async def publish_batch(self) -> BatchOutcome | None:
        """Claim one batch, publish it, mark the results and commit; None when nothing was pending."""
        # An idle poll is one indexed read (which also re-checks the lock); the claim transaction
        # only runs when there is work (idle relays were a measurable share of a 2-core machine).
        if not await self.lock.still_held_and(outbox_table.ANY_PENDING):  # raises once the lock is not ours
            return None
        async with self._pool.acquire() as conn:
            # One round trip for the claim (with its BEGIN) and one for the mark (with its COMMIT).
            # READ COMMITTED: the claim then locks only the rows it returns, no gaps, so writers
            # inserting new outbox rows never wait on (or deadlock with) the relay.
            tx = Pipeline(conn, isolation="READ COMMITTED")
            try:
                claimed = await outbox_table.claim(tx, self._settings.relay_batch_size)
                rows = [Row(r[0], r[1], r[2], r[3], r[4].encode(), r[5]) for r in claimed]
                if not rows:
                    await conn.rollback()
                    return None
                started = time.perf_counter()
                results = await self._send_all(rows)
                acked_at = datetime.now(UTC)
                outcome = settle(rows, results)
                self._mark(tx, outcome)
                await tx.commit()
            except BaseException:
                await _rollback_quietly(conn)
                raise
        self._log_batch(rows, outcome, time.perf_counter() - started)
        published = set(outcome.published)
        for row in rows:
            if row.id in published:
                metrics.COMMIT_TO_ACK.observe((acked_at - row.created_at.replace(tzinfo=UTC)).total_seconds())
        return outcome

    async def _send_all(self, rows: Sequence[Row]) -> list[BaseException | None]:
        futures: list[Any] = []
        for row in rows:
            try:
                futures.append(await self._producer.send(row.topic, value=row.payload, key=row.key.encode()))
            except Exception as exc:  # refused before sending, e.g. too large
                futures.append(exc)
        results: list[BaseException | None] = []
        for f in futures:
            if isinstance(f, BaseException):
                results.append(f)
                continue
            try:
                await f
                results.append(None)
            except Exception as exc:
                results.append(exc)
        return results

    def _mark(self, tx: Pipeline, outcome: BatchOutcome) -> None:
        outbox_table.mark(
            tx, published=outcome.published, failed=outcome.failed, retry=outcome.retry, error=outcome.error
        )
        for row_id, reason in outcome.failed:
            log.error("outbox_row_failed", outbox_id=row_id, reason=reason)

    def _log_batch(self, rows: Sequence[Row], outcome: BatchOutcome, elapsed_s: float) -> None:
        metrics.BATCH_ROWS.observe(len(rows))
        metrics.PUBLISH_SECONDS.observe(elapsed_s)
        metrics.PUBLISHED.inc(len(outcome.published))
        metrics.FAILED.inc(len(outcome.failed))
        metrics.RETRIED.inc(len(outcome.retry))
        now = datetime.now(UTC)
        oldest = min(r.created_at for r in rows).replace(tzinfo=UTC)
        log.info(
            "outbox_batch_published",
            batch_size=len(rows),
            published=len(outcome.published),
            failed=len(outcome.failed),
            retrying=len(outcome.retry),
            publish_ms=round(elapsed_s * 1000, 2),
            oldest_age_ms=round((now - oldest).total_seconds() * 1000, 2),
        )

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_lag >= LAG_EVERY_S:
            self._last_lag = now
            pending, oldest_age_s = await outbox_table.outbox_lag(self._pool)
            metrics.PENDING.set(pending)
            metrics.OLDEST_AGE.set(oldest_age_s)
            log.info("outbox_lag", pending=pending, oldest_age_s=oldest_age_s)
        if now - self._last_retention >= RETENTION_EVERY_S:
            self._last_retention = now
            deleted = await outbox_table.delete_published(
                self._pool, older_than=timedelta(days=self._settings.relay_retention_days)
            )
            if deleted:
                log.info("outbox_retention_deleted", rows=deleted)

    async def _start_producer(self) -> None:
        if not self._producer_started:
            await kafka_adapter.ensure_topics(self._settings)
            await self._producer.start()
            self._producer_started = True
            log.info("producer_started", bootstrap=self._settings.kafka_bootstrap)

    async def close(self) -> None:
        """Flush and stop the producer (after run() returned).

        A standby never started its producer; it is stopped all the same, which only closes
        its client, so that it is not reported as an unclosed producer when collected.
        """
        await self._producer.stop()
        self._producer_started = False

    async def _acquire_lock(self) -> bool:
        held = await self.lock.acquire()
        metrics.LEADER.set(1 if held else 0)
        return held

    async def _release_lock(self) -> None:
        metrics.LEADER.set(0)
        if self.lock.release():
            log.info("relay_became_standby")

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass


async def _rollback_quietly(conn: aiomysql.Connection) -> None:
    try:
        await conn.rollback()
    except Exception:
        conn.close()
