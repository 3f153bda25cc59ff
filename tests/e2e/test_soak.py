"""A two-minute soak (issue 26): mixed traffic against the api, a worker and the relay; fails on a clear leak.

tests/soak.py's traffic at a fixed, modest rate (uploads of photo-sized and small images, sync
uploads, confirms, reads, upload commands on Kafka), every process sampled every 5 s. After a
30 s warm-up, each process's own RSS may not climb faster than a clear leak would make it (a
request's body kept per upload is ~10 MiB/min here), its descriptors and threads may not keep
growing, and no answer may be a 5xx, no image FAILED. `bench/soak.py` runs twenty minutes at 70 %
of the measured capacity and reports the figures (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.dsn import DbDsn
from tests import images, soak
from tests.e2e.conftest import running_stack, stack_settings

CLEAR_LEAK_MIB_PER_MIN = 8.0


def test_two_minutes_of_mixed_traffic_leave_memory_descriptors_and_threads_flat(
    database: DbDsn, kafka: str, tmp_path: Path
) -> None:
    settings = stack_settings(database, kafka, tmp_path, convert_processes=1)
    photos = [(f"photo-{n}.jpg", images.noisy_jpeg(1024, 768, seed=n)) for n in range(4)]
    with running_stack(settings, tmp_path) as stack:
        traffic = soak.Traffic(f"http://127.0.0.1:{settings.api_port}", kafka, photos, images.png(64, 64))
        metrics_url = f"http://127.0.0.1:{stack.worker_metrics_port}/metrics"
        with soak.Sampler(stack.processes, settings.db_dsn, metrics_url, interval_s=5) as sampler:
            asyncio.run(traffic.run(rate=8, duration_s=120))
        failed = soak.failed_images(settings.db_dsn)
    figures = soak.figures(sampler.samples, warm_up_s=30)
    print({"answers": dict(traffic.answers), "no_answer": dict(traffic.failures), **figures})
    assert not [a for a in traffic.answers if a[1] >= 500], traffic.answers
    assert not traffic.failures and failed == 0
    assert traffic.answers[("photo", 200)] > 100 and traffic.answers[("confirm", 200)] > 10, traffic.answers
    for name, p in figures["processes"].items():
        assert p["main_rss_slope_mib_per_min"] < CLEAR_LEAK_MIB_PER_MIN, (name, p)
        first, last, _ = p["fds"]
        assert last - first <= 20, (name, p)  # a descriptor per request would be hundreds
        assert p["threads"][2] <= p["threads"][0] + 16, (name, p)
