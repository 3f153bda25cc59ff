"""The sweeps, once: what each removes, at what age, and when the fleet runs it (CONTRACT 6).

The worker schedules every one (workers/app.py, on the leader: one worker of the fleet runs each;
all are idempotent) and `python -m workers sweep NAME` runs one now (workers/__main__.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiomysql
import structlog

from adapters.db import idempotency_claims, quotas
from adapters.db.sweeps import Progress, SweepReport, sweep_expired, sweep_orphans, sweep_processed
from core import retention
from core.ports import Storage

log = structlog.get_logger("workers")

# (pool, storage, older than: the sweep's own age when None, progress) -> what was removed
Run = Callable[[aiomysql.Pool, Storage, timedelta | None, Progress | None], Awaitable[SweepReport]]


@dataclass(frozen=True)
class Sweep:
    run: Run
    crontab: str | None = None  # a daily time (the worker's crontab), or
    every_s: float | None = None  # an interval (the worker's timer)


def _expired(status: str, age: timedelta) -> Run:
    async def run(
        pool: aiomysql.Pool, storage: Storage, older: timedelta | None, progress: Progress | None
    ) -> SweepReport:
        return await sweep_expired(pool, storage, status=status, older_than=older or age, progress=progress)

    return run


async def _orphans(
    pool: aiomysql.Pool, storage: Storage, older: timedelta | None, progress: Progress | None
) -> SweepReport:
    return await sweep_orphans(pool, storage, older_than=older or retention.ORPHAN_AGE, progress=progress)


async def _processed(
    pool: aiomysql.Pool, _: Storage, older: timedelta | None, progress: Progress | None
) -> SweepReport:
    return await sweep_processed(pool, older_than=older or retention.PROCESSED_EVENTS_RETENTION, progress=progress)


async def _idempotency(pool: aiomysql.Pool, _: Storage, __: timedelta | None, ___: Progress | None) -> SweepReport:
    rows = await idempotency_claims.sweep(pool, now=datetime.now(UTC))  # answers are kept 24 h (CONTRACT 2.1)
    log.info("sweep_finished", sweep="idempotency_keys", rows=rows)
    return SweepReport(rows, 0)


async def _quotas(pool: aiomysql.Pool, _: Storage, __: timedelta | None, ___: Progress | None) -> SweepReport:
    rows = await quotas.prune(pool, datetime.now(UTC))  # usage older than a day counts no more (CONTRACT 2.7)
    log.info("sweep_finished", sweep="quota_usage", rows=rows)
    return SweepReport(rows, 0)


# By the name `python -m workers sweep` takes.
SWEEPS = {
    "failed": Sweep(_expired("FAILED", retention.FAILED_EXPIRY), crontab="0 3 * * *"),
    "temp": Sweep(_expired("TEMP", retention.TEMP_EXPIRY), crontab="0 10 * * *"),
    "orphans": Sweep(_orphans, every_s=3600.0),
    "processed": Sweep(_processed, crontab="30 3 * * *"),
    "idempotency": Sweep(_idempotency, every_s=3600.0),
    "quotas": Sweep(_quotas, every_s=3600.0),
}
