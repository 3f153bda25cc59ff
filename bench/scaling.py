"""Worker scaling benchmark (issue 5): one worker process, then two, on the same machine.

Each worker converts on one process (IMAGES_CONVERT_PROCESSES=1), so on 2 cores two workers
should convert about twice as fast as one: the partitions of image-uploaded are split between
them by the consumer group.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace

from conversion import pipeline
from harness import bench_environment, logs, start, write_results

from tests import images, services


def ready_count(log: str) -> int:
    return log.count("Worker ready")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=192)
    args = parser.parse_args()
    photos = [images.noisy_jpeg(1920, 1080, seed=500 + n) for n in range(args.images)]
    # 12 partitions, the production default, so the two workers split six each.
    with bench_environment("scaling", convert_processes=1, worker_concurrency=2, uploaded_partitions=12) as settings:
        settings = replace(settings, log_level="INFO")
        log_dir = logs("scaling")
        procs = [
            start("relay", ["outbox"], settings, log_dir),
            start("worker-1", ["workers", "worker"], settings, log_dir),
        ]
        try:
            services.wait_until(lambda: ready_count(procs[1].log()) >= 1, timeout_s=60, what="worker-1 ready")
            asyncio.run(pipeline(settings, photos[:2]))  # warm-up
            _, one = asyncio.run(pipeline(settings, photos, parallel=1))
            before = procs[1].log().count('"image_converted"')
            procs.append(start("worker-2", ["workers", "worker"], settings, log_dir))
            # Both have (re)joined once worker-1 has been ready twice (before and after the rebalance).
            services.wait_until(
                lambda: ready_count(procs[2].log()) >= 1 and ready_count(procs[1].log()) >= 2,
                timeout_s=90,
                what="the group to rebalance",
            )
            asyncio.run(pipeline(settings, photos[:2]))
            _, two = asyncio.run(pipeline(settings, photos, parallel=2))
            converted = {p.name: p.log().count('"image_converted"') for p in procs[1:]}
            converted[procs[1].name] -= before  # phase two only
        finally:
            for p in reversed(procs):
                p.terminate()
    result = {
        "images": args.images,
        "one_worker_images_per_s": round(one, 2),
        "two_workers_images_per_s": round(two, 2),
        "speedup": round(two / one, 2),
        # Keys are random UUIDs, so the two workers' six partitions each hold unequal shares; the
        # phase lasts as long as the busier worker needs.
        "phase_two_converted_per_worker": converted,
        "busier_worker_share": round(max(converted.values()) / sum(converted.values()), 2),
    }
    print(result)
    write_results("scaling", result)


if __name__ == "__main__":
    main()
