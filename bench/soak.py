"""Soak benchmark (issue 26): mixed traffic at ~70 % of capacity for 20 minutes, memory and resources sampled.

`make run`'s processes (the api, a worker, the relay) on a fresh database and broker. First the
worker's capacity is measured: a burst of real photographs (bench/photos.py) uploaded at once,
timed to the last READY. Then tests/soak.py's traffic (uploads of photos and small images, sync
uploads, confirms, reads, upload commands on Kafka) runs open-loop at the rate that puts 70 % of
that capacity's photo conversions on the worker, while every process's RSS, descriptors and
threads, MariaDB's connections, the consumer lag and the outbox are sampled every 10 s.
Figures in bench/results/soak.json: RSS slope per process after warm-up (target: flat, under
1 MiB/min), no FAILED image, no 5xx, lag bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from harness import ROOT, bench_environment, with_api_port, write_results
from photos import package_photos

sys.path.insert(0, str(ROOT))
from tests import images, services, soak
from tests.e2e.client import ImageClient
from tests.e2e.conftest import running_stack


async def capacity(base_url: str, photos: list[tuple[str, bytes]], count: int) -> float:
    """Photo conversions per second: `count` uploaded at once, first upload to last READY."""
    client = ImageClient(base_url)
    try:
        began = time.perf_counter()
        ids = []
        for n in range(count):
            _, body = await client.upload([photos[n % len(photos)]], category="POST", field="file")
            ids.append(body["id"])

        async def all_ready() -> bool:
            for image_id in ids:
                _, body = await client.get(f"/api/v1/images/{image_id}")
                if b'"READY"' not in body:
                    return False
            return True

        await services.eventually(all_ready, timeout_s=600, what="the calibration burst to be READY")
        return count / (time.perf_counter() - began)
    finally:
        await client.close()


def run(
    settings: Any, minutes: float, photos: list[tuple[str, bytes]], *, rate: float | None, interval_s: float
) -> dict[str, Any]:
    root = Path(settings.upload_dir).parent / "soak-logs"
    root.mkdir(exist_ok=True)
    with running_stack(settings, root) as stack:
        base = f"http://127.0.0.1:{settings.api_port}"
        measured = None
        if rate is None:
            measured = asyncio.run(capacity(base, photos, 40))
            rate = round(0.7 * measured / (soak.MIX["photo"] / sum(soak.MIX.values())), 2)
        small = images.png(64, 64)
        traffic = soak.Traffic(base, settings.kafka_bootstrap, photos, small)
        metrics_url = f"http://127.0.0.1:{stack.worker_metrics_port}/metrics"
        with soak.Sampler(stack.processes, settings.db_dsn, metrics_url, interval_s) as sampler:
            asyncio.run(traffic.run(rate, minutes * 60))
            time.sleep(interval_s)  # one more sample after the load
        samples = sampler.samples
        failed = soak.failed_images(settings.db_dsn)
    answers = {f"{op} {status}": n for (op, status), n in sorted(traffic.answers.items())}
    server_errors = sum(n for (_, status), n in traffic.answers.items() if status >= 500)
    return {
        "minutes": minutes,
        "photo_conversions_per_s": None if measured is None else round(measured, 2),
        "rate_ops_per_s": rate,
        "mix": soak.MIX,
        "photos": len(photos),
        "answers": answers,
        "no_answer": dict(traffic.failures),
        "server_errors": server_errors,
        "failed_images": failed,
        "upload_commands": len(traffic.commands),
        "load_fell_behind_s": round(traffic.late_s, 2),
        **soak.figures(samples, warm_up_s=min(120.0, minutes * 60 / 4)),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--rate", type=float, help="ops/s (default: 70 % of the measured capacity)")
    parser.add_argument("--interval", type=float, default=10.0)
    args = parser.parse_args()
    photos = list(package_photos().items())
    with bench_environment("soak", log_level="INFO") as settings:
        settings = with_api_port(settings)
        result = run(settings, args.minutes, photos, rate=args.rate, interval_s=args.interval)
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(summary)
    write_results("soak", result)


if __name__ == "__main__":
    main()
