"""Relay benchmark (issue 4): commit-to-topic latency at 10 and 500 rows/s, and the relay's maximum rate.

Rows are committed one per transaction (as confirms and uploads write them) at a fixed rate; a
consumer in this process timestamps each message as it arrives. Latency = arrival - commit,
both on this process's clock. Target: p99 < 250 ms at 500 rows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from harness import at_fixed_rate, bench_environment, start, summary_ms, write_results

from adapters.db import mariadb
from adapters.db.mariadb import MariaDbUnitOfWork
from core.events import Envelope
from core.settings import Settings

TOPIC = "post-image-changed"


class Arrivals:
    """Consumes the topic from its end and timestamps every message."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = TOPIC
        self.seen: dict[str, float] = {}  # eventId -> arrival
        self.seen_keys: dict[str, float] = {}  # message key -> first arrival
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # A short fetch wait: measure the relay, not the consumer's long poll (tansu answers fetches at the max wait).
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
        )
        await self.consumer.start()
        parts = [TopicPartition(self.topic, p) for p in sorted(self.consumer.partitions_for_topic(self.topic) or [])]
        self.consumer.assign(parts)
        await self.consumer.seek_to_end()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    self.seen.setdefault(orjson.loads(r.value)["eventId"], now)
                    self.seen_keys.setdefault(r.key.decode(), now)

    async def wait_for(self, ids: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not ids <= self.seen.keys():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ids - self.seen.keys())} messages never arrived")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await self.consumer.stop()


def envelope(n: int) -> Envelope:
    ref = f"ref-{n % 50}"
    return Envelope(
        str(uuid.uuid4()), "IMAGES_CHANGED", datetime.now(UTC), TOPIC, ref, {"referenceId": ref, "images": []}
    )


async def at_rate(settings: Settings, rate: float, seconds: float) -> dict:
    pool = await mariadb.create_pool(settings.db_dsn, size=16)
    arrivals = Arrivals(settings)
    await arrivals.start()
    committed: dict[str, float] = {}

    async def write(n: int) -> None:
        env = envelope(n)
        async with MariaDbUnitOfWork(pool) as uow:
            await uow.outbox.add(env)
            await uow.commit()
        committed[env.event_id] = time.perf_counter()

    achieved = await at_fixed_rate(rate, int(rate * seconds), write)
    await arrivals.wait_for(set(committed), timeout_s=60)
    await arrivals.stop()
    pool.close()
    await pool.wait_closed()
    latencies = [arrivals.seen[e] - committed[e] for e in committed]
    return {"target_rows_per_s": rate, "achieved_rows_per_s": round(achieved, 1), **summary_ms(latencies)}


async def max_rate(settings: Settings, rows: int, log_dir: Path) -> dict:
    """Fill the outbox with the relay stopped, then time how fast one relay drains it."""
    pool = await mariadb.create_pool(settings.db_dsn, size=4)
    for start_at in range(0, rows, 500):
        async with MariaDbUnitOfWork(pool) as uow:
            for n in range(start_at, min(rows, start_at + 500)):
                await uow.outbox.add(envelope(n))
            await uow.commit()
    arrivals = Arrivals(settings)
    await arrivals.start()
    began = time.perf_counter()
    relay = start("relay-drain", ["outbox"], settings, log_dir)
    try:
        while len(arrivals.seen) < rows:
            await asyncio.sleep(0.05)
            if time.perf_counter() - began > 300:
                raise TimeoutError("relay did not drain in 300 s")
        first, last = min(arrivals.seen.values()), max(arrivals.seen.values())
    finally:
        relay.terminate()
        await arrivals.stop()
        pool.close()
        await pool.wait_closed()
    return {
        "rows": rows,
        "rows_per_s": round(rows / (last - first), 1),
        "drain_s_including_start": round(last - began, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain-rows", type=int, default=20_000)
    args = parser.parse_args()
    with bench_environment("relay") as settings:
        log_dir = Path(settings.upload_dir)
        relay = start("relay", ["outbox"], settings, log_dir)
        try:
            time.sleep(2)
            rates = [asyncio.run(at_rate(settings, rate, args.seconds)) for rate in (10, 500)]
            for r in rates:
                print(r, flush=True)
        finally:
            relay.terminate()
        drain = asyncio.run(max_rate(settings, args.drain_rows, log_dir))
        print(drain, flush=True)
    write_results(
        "relay",
        {
            "commit_to_topic": rates,
            "max_rate": drain,
            "settings": {
                "relay_poll_interval_s": settings.relay_poll_interval_s,
                "relay_idle_interval_s": settings.relay_idle_interval_s,
                "relay_batch_size": settings.relay_batch_size,
            },
        },
    )


if __name__ == "__main__":
    main()
