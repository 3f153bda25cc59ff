"""The per-process cache of reference_types and extensions (CONTRACT section 1), reloadable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiomysql
import structlog

from core.references import ReferenceData, ReferenceRule

log = structlog.get_logger(__name__)

SELECT_REFERENCE_TYPES = (
    "SELECT code, name, allows_multiple, max_images, description FROM reference_types ORDER BY code"
)
SELECT_EXTENSIONS = "SELECT code, name FROM extensions ORDER BY code"


async def load_reference_data(pool: aiomysql.Pool) -> ReferenceData:
    """Read both tables in one snapshot."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(SELECT_REFERENCE_TYPES)
        rules = {
            code: ReferenceRule(
                code, name, bool(multiple), None if max_images is None else int(max_images), description
            )
            for code, name, multiple, max_images, description in await cur.fetchall()
        }
        await cur.execute(SELECT_EXTENSIONS)
        extensions = {code: name for code, name in await cur.fetchall()}
    return ReferenceData(rules=rules, extensions=extensions)


class ReferenceCache:
    """Holds the current snapshot; `reload()` swaps it atomically (readers never see half a load)."""

    def __init__(self, pool: aiomysql.Pool) -> None:
        self._pool = pool
        self._data: ReferenceData | None = None

    @property
    def data(self) -> ReferenceData:
        """Return the current snapshot; reload() must have run once."""
        if self._data is None:
            raise RuntimeError("reference cache used before its first reload()")
        return self._data

    async def reload(self) -> ReferenceData:
        """Load both tables again and swap the snapshot in."""
        self._data = await load_reference_data(self._pool)
        log.info(
            "reference_cache_reloaded",
            reference_types=len(self._data.rules),
            extensions=len(self._data.extensions),
        )
        return self._data


def seconds_until(hour: int, minute: int, now: datetime) -> float:
    """Return the seconds from `now` to the next hour:minute UTC (CONTRACT 1: reload daily at 00:30)."""
    target = now.astimezone(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    return (target - now).total_seconds()


async def reload_daily(cache: ReferenceCache, *, hour: int = 0, minute: int = 30) -> None:
    """Reload the cache every day at hour:minute UTC until cancelled; a failed reload keeps the old data."""
    while True:
        await asyncio.sleep(seconds_until(hour, minute, datetime.now(UTC)))
        try:
            await cache.reload()
        except Exception as exc:
            log.error("reference_cache_reload_failed", error=f"{type(exc).__name__}: {exc}")
