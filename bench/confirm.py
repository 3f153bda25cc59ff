"""Confirm benchmark (issue 6): confirm-to-event latency, from the HTTP 200 to the message on the topic.

The api and one relay run as processes; this process confirms fresh READY images to fresh
references at 1 and 50 confirms/s and timestamps each IMAGES_CHANGED as it arrives.
Target: p99 < 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime

import aiohttp
from harness import at_fixed_rate, bench_environment, logs, start, summary_ms, wait_port, with_api_port, write_results
from relay import Arrivals

from adapters.db import mariadb
from core.settings import Settings

TOPIC = "post-image-changed"


async def ready_images(settings: Settings, count: int) -> list[str]:
    pool = await mariadb.create_pool(settings.db_dsn, size=2)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    now = datetime.now(UTC).replace(tzinfo=None)
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO images (image_id, status, reference_type_id, image_url, uploader_id, created_at, updated_at)"
            " VALUES (%s, 'READY', 'POST', %s, 'bench', %s, %s)",
            [(i, f"{settings.base_url}POST/{i}.webp", now, now) for i in ids],
        )
    pool.close()
    await pool.wait_closed()
    return ids


async def at_rate(settings: Settings, rate: float, seconds: float) -> dict:
    total = int(rate * seconds)
    ids = await ready_images(settings, total * 2)
    arrivals = Arrivals(settings)
    arrivals.topic = TOPIC
    await arrivals.start()
    answered: dict[str, float] = {}
    url = f"http://127.0.0.1:{settings.api_port}/api/v1/images/confirm"
    async with aiohttp.ClientSession() as session:

        async def confirm(n: int) -> None:
            reference = f"bench-{uuid.uuid4().hex[:12]}"
            async with session.post(url, json={"imageIds": ids[2 * n : 2 * n + 2], "referenceId": reference}) as r:
                assert r.status == 200, await r.text()
            answered[reference] = time.perf_counter()

        achieved = await at_fixed_rate(rate, total, confirm)
    deadline = time.monotonic() + 60
    while not set(answered) <= arrivals.seen_keys.keys() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await arrivals.stop()
    latencies = [arrivals.seen_keys[ref] - at for ref, at in answered.items()]
    return {"target_confirms_per_s": rate, "achieved_confirms_per_s": round(achieved, 1), **summary_ms(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with bench_environment("confirm") as settings:
        settings = with_api_port(settings)
        port = settings.api_port
        log_dir = logs("confirm")
        procs = [start("relay", ["outbox"], settings, log_dir), start("api", ["api"], settings, log_dir)]
        try:
            wait_port(port)
            rows = [
                asyncio.run(at_rate(settings, 1, 3 * args.seconds)),
                asyncio.run(at_rate(settings, 50, args.seconds)),
            ]
            for r in rows:
                print(r, flush=True)
        finally:
            for p in reversed(procs):
                p.terminate()
    write_results("confirm", {"confirm_to_event": rows})


if __name__ == "__main__":
    main()
