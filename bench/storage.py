"""Object storage benchmark (issue 14): ingest and conversion on S3 next to the local store, in one run.

The S3 server is moto's (`moto_server`, over loopback), the store the tests and `make run-fleet`
use; it runs on the same cores as the service, so its own CPU per request is part of what is
measured, and reported (`s3_server_cpu_ms_per_upload`).

- Ingest: one api on the local store and one on a bucket, driven in turn by wrk (alternating
  rounds, as bench/ingest.py), 100 KiB and 1.5 MiB at concurrency 16. Target: S3 >= 0.7x local
  at 100 KiB c16. Beside them, the bare client's ceiling: aiobotocore PUTs of the same bytes at
  the same concurrency, with no service in between.
- Conversion: a worker on each store (each with its own database and broker), 1080p photos at
  full size, in alternating runs; images/s in the steady state (bench/conversion.py's pipeline).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from conversion import FULL_ONLY, pipeline
from harness import ROOT, bench_environment, logs, start, wait_port, write_results
from ingest import SIZES, body, cpu_seconds, jpeg_of_size, measured, median_row

sys.path.insert(0, str(ROOT))
from core.settings import Settings
from core.storage import S3, StorageUrl
from scripts.s3 import create_bucket, moto_command
from tests import images, services

BUCKET = "bench-images"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_DEFAULT_REGION": "us-east-1"}


def on_s3(settings: Settings, endpoint: str, scratch: Path) -> Settings:
    return replace(
        settings,
        storage_url=StorageUrl(S3, BUCKET),
        s3_path_style=True,
        scratch_dir=str(scratch),
        base_url=f"{endpoint}/{BUCKET}/",
    )


async def bare_puts(endpoint: str, payload: bytes, concurrency: int, seconds: float) -> float:
    """PUT/s of aiobotocore alone, `concurrency` at a time: what the S3 server takes with no service in between."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(max_pool_connections=concurrency, s3={"addressing_style": "path"})
    async with get_session().create_client("s3", endpoint_url=endpoint, config=config) as client:
        done = 0
        stop_at = time.perf_counter() + seconds

        async def one(n: int) -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                await client.put_object(Bucket=BUCKET, Key=f"bare/{n}/{done}", Body=payload)
                done += 1

        began = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(concurrency)))
        return done / (time.perf_counter() - began)


def ingest(endpoint: str, moto_pid: int, sizes: list[str], concurrency: int, rounds: int, seconds: float) -> list[dict]:
    rows = []
    with bench_environment("storage_ingest") as settings:
        local_port, s3_port = services.free_port(), services.free_port()
        log_dir = logs("storage")
        local = start("api-local", ["api"], replace(settings, api_port=local_port, log_level="INFO"), log_dir)
        s3 = start(
            "api-s3",
            ["api"],
            replace(on_s3(settings, endpoint, log_dir / "scratch-api"), api_port=s3_port, log_level="INFO"),
            log_dir,
        )
        try:
            wait_port(local_port)
            wait_port(s3_port)
            for size in sizes:
                jpeg = jpeg_of_size(SIZES[size])
                payload = body(jpeg)
                runs: dict[str, list[dict]] = {"local": [], "s3": []}
                ratios = []
                for _ in range(rounds):
                    runs["local"].append(
                        measured(
                            f"http://127.0.0.1:{local_port}/api/images", payload, concurrency, seconds, local.popen.pid
                        )
                    )
                    moto_before = cpu_seconds(moto_pid)
                    run = measured(
                        f"http://127.0.0.1:{s3_port}/api/images", payload, concurrency, seconds, s3.popen.pid
                    )
                    run["s3_server_cpu_ms_per_upload"] = round(
                        (cpu_seconds(moto_pid) - moto_before) * 1000 / max(1, run["count"] + 1), 3
                    )
                    runs["s3"].append(run)
                    ratios.append(round(run["uploads_per_s"] / runs["local"][-1]["uploads_per_s"], 2))
                    print(size, concurrency, "local", runs["local"][-1], "s3", run, flush=True)
                bare = asyncio.run(bare_puts(endpoint, jpeg, concurrency, seconds))
                for store in ("local", "s3"):
                    row = {"store": store, "size": size, "bytes": len(jpeg), "concurrency": concurrency}
                    if store == "s3":
                        row |= {
                            "vs_local": statistics.median(ratios),
                            "runs_vs_local": ratios,
                            "bare_aiobotocore_puts_per_s": round(bare, 1),
                        }
                    rows.append(row | median_row(runs[store]))
        finally:
            local.terminate()
            s3.terminate()
    return rows


def conversion(endpoint: str, moto_pid: int, photos: list[bytes], repeat: int) -> dict:
    cores = len(os.sched_getaffinity(0))
    tuning = {"convert_processes": cores, "worker_concurrency": 2 * cores}
    with (
        bench_environment("storage_local", **tuning) as local_settings,
        bench_environment("storage_s3", **tuning) as s3_base,
    ):
        log_dir = logs("storage")
        stores = {"local": local_settings, "s3": on_s3(s3_base, endpoint, log_dir / "scratch-worker")}
        procs = []
        try:
            for name, settings in stores.items():
                procs.append(start(f"relay-{name}", ["outbox"], replace(settings, log_level="INFO"), log_dir))
                procs.append(
                    start(f"worker-{name}", ["workers", "worker"], replace(settings, log_level="INFO"), log_dir)
                )
                services.wait_until(lambda p=procs[-1]: "Worker ready" in p.log(), timeout_s=60, what=f"{name} worker")
                asyncio.run(pipeline(settings, photos[:2], category=FULL_ONLY))  # warm its conversion processes
            steady: dict[str, list[float]] = {"local": [], "s3": []}
            s3_server_ms: list[float] = []
            for _ in range(repeat):
                for name, settings in stores.items():
                    moto_before = cpu_seconds(moto_pid)
                    steady[name].append(asyncio.run(pipeline(settings, photos, category=FULL_ONLY))[1])
                    if name == "s3":  # the S3 server's share of the same cores: a GET and a PUT per image
                        s3_server_ms.append((cpu_seconds(moto_pid) - moto_before) * 1000 / len(photos))
                print({k: round(v[-1], 2) for k, v in steady.items()}, flush=True)
        finally:
            for p in reversed(procs):
                p.terminate()
    local, s3 = (statistics.median(steady[k]) for k in ("local", "s3"))
    return {
        "set": "1080p",
        "images": len(photos),
        "cores": cores,
        "local_images_per_s": round(local, 2),
        "s3_images_per_s": round(s3, 2),
        "vs_local": round(s3 / local, 2),
        "s3_server_cpu_ms_per_image": round(statistics.median(s3_server_ms), 1),
        "runs": {k: [round(x, 2) for x in v] for k, v in steady.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="100KiB,1.5MiB")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--photos", type=int, default=48, help="1080p photos per conversion run")
    parser.add_argument("--repeat", type=int, default=3, help="conversion runs per store; the median is reported")
    args = parser.parse_args()
    port = services.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(CREDENTIALS | {"AWS_ENDPOINT_URL": endpoint})  # this process's clients and its children
    moto = subprocess.Popen(moto_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        create_bucket(endpoint, BUCKET)
        rows = ingest(endpoint, moto.pid, args.sizes.split(","), args.concurrency, args.rounds, args.seconds)
        photos = [images.noisy_jpeg(1920, 1080, seed=n) for n in range(args.photos)]
        converted = conversion(endpoint, moto.pid, photos, args.repeat)
    finally:
        services.stop_process(moto, timeout_s=10)
    write_results(
        "storage", {"s3_server": "moto_server (loopback, same cores)", "ingest": rows, "conversion": converted}
    )


if __name__ == "__main__":
    main()
