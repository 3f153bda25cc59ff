"""Conversion benchmark (issues 5, 17): worker images/s next to a raw Pillow loop, and upload-to-READY latency.

Both sides convert the same generated photos (1080p and 12 MP JPEGs) on the same cores in the same
run. The raw loop is the floor of what Python can do: a pool of fresh processes mapping open ->
exif_transpose -> WebP q80 over bytes in memory, with Pillow's defaults; it runs a second time
with the worker's memory settings ("tuned"), so the pipeline's own cost shows too. The worker side
is the whole pipeline: the upload (file + rows + outbox), relay, Faust worker, conversion in its
process pool, the READY transaction. Target: >= 0.9x the raw loop.

Each photo set runs twice: full size only (uploaded as CATEGORY, whose widths this run sets to
none), and with PRODUCT's variants (320, 640, 1280), where the raw loop makes the same sizes from
its one decode (Lanczos with reducing_gap=3, as the worker). Target there: >= 0.95x the raw loop;
the row also says what the variants cost next to full size only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime

from harness import RESULTS, bench_environment, logs, start, summary_ms, wait_port, with_api_port, write_results
from photos import package_photos, wallpaper_photos
from raw_pillow import raw_loop

from adapters.db import mariadb
from adapters.db.mariadb import MariaDbUnitOfWork
from adapters.db.reference_cache import ReferenceCache
from adapters.ids import new_id
from adapters.storage import open_storage
from adapters.upload_ports import upload_ports
from core.settings import Settings
from core.upload import IncomingFile, UploadForm, upload
from core.variants import parse_widths
from tests import images, services
from tests.e2e.client import ImageClient
from tests.processes import Process

FULL_ONLY, WITH_VARIANTS = "CATEGORY", "PRODUCT"
BENCH_WIDTHS = f"{FULL_ONLY}=;{WITH_VARIANTS}=320,640,1280"


async def pipeline(
    settings: Settings,
    photos: list[bytes],
    parallel: int | None = None,
    category: str = FULL_ONLY,
    names: list[str] | None = None,
) -> tuple[float, float]:
    """Ingest every photo at once; return images/s (first ingest to last READY, first to last READY).

    The second number is the steady rate: it leaves out the pipeline's fill time (upload to the
    first conversion starting), which is latency, not throughput.
    """
    pool = await mariadb.create_pool(settings.db_dsn, size=4)
    cache = ReferenceCache(pool)
    await cache.reload()
    began = datetime.now(UTC)
    ids = []
    async with open_storage(settings) as storage:  # the worker's store: a directory, or a bucket
        ports = upload_ports(settings, storage, lambda: MariaDbUnitOfWork(pool))
        for n, data in enumerate(photos):
            (img,) = await upload(
                UploadForm("bench", category, single=[IncomingFile(names[n] if names else f"{n}.jpg", data)]),
                references=cache.data,
                settings=settings,
                ports=ports,
                now=datetime.now(UTC),
                new_id=new_id,
            )
            ids.append(img.image_id)
    marks = ", ".join(["%s"] * len(ids))
    while True:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(
                f"SELECT COUNT(*), MIN(updated_at), MAX(updated_at) FROM images WHERE status = 'READY' AND image_id IN ({marks})",
                ids,
            )
            done, first, last = await cur.fetchone()
        if done == len(ids):
            break
        # The rate comes from the rows' own timestamps, so a slow poll loses no precision and
        # leaves the two cores to the pipeline under test.
        await asyncio.sleep(0.25)
    pool.close()
    await pool.wait_closed()
    whole = len(ids) / (last.replace(tzinfo=UTC) - began).total_seconds()
    # With `parallel` conversions at once the first READY ends the first round, so the window
    # from the first READY to the last holds len - parallel conversions, not len - 1.
    parallel = parallel or settings.effective_convert_processes
    steady = (len(ids) - parallel) / max((last - first).total_seconds(), 1e-6)
    return whole, steady


def legs(log: str) -> dict[str, float]:
    """Mean ms per image of the worker's legs (its `image_converted` lines): where an image's time goes."""
    lines = [json.loads(line) for line in log.splitlines() if '"image_converted"' in line and line.startswith("{")]
    names = ("queue_ms", "convert_ms", "store_ms", "commit_ms", "duration_ms")
    return {n: round(statistics.mean(e.get(n, 0) for e in lines), 1) for n in names} if lines else {}


BREAKDOWN = (
    "SELECT i.created_at, o.published_at, a.last_started_at, h.updated_at FROM images i"
    " JOIN outbox o ON o.message_key = i.image_id AND o.topic = 'image-uploaded'"
    " JOIN conversion_attempts a ON a.image_id = i.image_id"
    " JOIN status_history h ON h.image_id = i.image_id AND h.new_status = 'READY' WHERE i.image_id IN ({})"
)


async def latency(settings: Settings, photo: bytes, uploads: int, gap_s: float, worker: Process) -> dict:
    """Upload one photo at a time over HTTP; latency = READY time - upload time (server clocks).

    With its legs, from the rows' own timestamps: relay (upload commit to the broker's ack of
    IMAGE_UPLOADED), consumer (ack to the worker counting its attempt, i.e. the fetch and the
    agent's queue), attempt to READY; and, from the worker's `image_converted` lines, that last
    leg's parts: queue (waiting for a conversion process), conversion (decode, encode, variants,
    file writes, in the process) and transaction (the READY commit).
    """
    client = ImageClient(f"http://127.0.0.1:{settings.api_port}")
    ids = []
    try:
        for _ in range(uploads):
            _, body = await client.upload([("p.jpg", photo)], category="POST", field="file")
            ids.append(body["id"])
            await asyncio.sleep(gap_s)
    finally:
        await client.close()
    pool = await mariadb.create_pool(settings.db_dsn, size=2)
    marks = ", ".join(["%s"] * len(ids))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT i.created_at, h.updated_at FROM images i JOIN status_history h ON h.image_id = i.image_id"
                f" AND h.new_status = 'READY' WHERE i.image_id IN ({marks})",
                ids,
            )
            rows = await cur.fetchall()
        if len(rows) == len(ids):
            break
        await asyncio.sleep(0.1)
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(BREAKDOWN.format(marks), ids)
        legs = await cur.fetchall()
    pool.close()
    await pool.wait_closed()

    def p50(pairs: list[tuple[datetime, datetime]]) -> float:
        return summary_ms([(b - a).total_seconds() for a, b in pairs])["p50_ms"]

    converted = [e for e in worker.log_events() if e.get("event") == "image_converted" and e.get("image_id") in ids]

    def p50_of(field: str) -> float:
        return round(statistics.median(e[field] for e in converted), 2) if converted else float("nan")

    return summary_ms([(ready - created).total_seconds() for created, ready in rows]) | {
        "p50_legs_ms": {
            "relay": p50([(c, p) for c, p, _, _ in legs]),
            "consumer": p50([(p, s) for _, p, s, _ in legs]),
            "attempt_to_ready": p50([(s, r) for _, _, s, r in legs]),
            "queue": p50_of("queue_ms"),
            "conversion": p50_of("convert_ms"),
            "transaction": p50_of("commit_ms"),
        }
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hd", type=int, default=96, help="1080p photos")
    parser.add_argument("--mp12", type=int, default=12, help="12 MP photos")
    parser.add_argument("--repeat", type=int, default=5, help="runs per set; the median is reported")
    parser.add_argument("--sets", default="1080p,12MP,photographs", help="which photo sets to run")
    parser.add_argument(
        "--latency-only", action="store_true", help="measure upload-to-READY only, keeping the last throughput"
    )
    args = parser.parse_args()
    sets = {
        "1080p": [images.noisy_jpeg(1920, 1080, seed=n) for n in range(args.hd)],
        "12MP": [images.noisy_jpeg(4000, 3000, seed=100 + n) for n in range(args.mp12)],
    }
    # Real photographs that packages ship (bench/photos.py): 0.1 to 14.7 MP, JPEG and PNG, colour
    # and greyscale; each four times, so that a run (~13 s) is long enough to time: the 14.7 MP one
    # takes ~1 s of one core, and whichever loop ends on it runs it with the other core idle.
    real = package_photos() | wallpaper_photos()
    names = {"photographs": [name for name in real for _ in range(4)]}
    sets["photographs"] = [real[name] for name in names["photographs"]]
    sets = {name: photos for name, photos in sets.items() if name in args.sets.split(",")}
    cores = len(__import__("os").sched_getaffinity(0))
    rows = []
    widths = parse_widths(BENCH_WIDTHS)
    with bench_environment(
        "conversion", convert_processes=cores, worker_concurrency=2 * cores, variant_widths=widths
    ) as settings:
        settings = with_api_port(settings, log_level="INFO")
        port = settings.api_port
        log_dir = logs("conversion")
        procs = [
            start("relay", ["outbox"], settings, log_dir),
            start("workers", ["workers", "worker"], settings, log_dir),
        ]
        try:
            services.wait_until(lambda: "Worker ready" in procs[1].log(), timeout_s=60, what="worker ready")
            warm = [images.noisy_jpeg(1920, 1080, seed=n) for n in range(2)]
            asyncio.run(pipeline(settings, warm))  # warm the worker's conversion processes
            runs = [(name, photos, FULL_ONLY) for name, photos in sets.items()]
            runs += [(f"{name}+variants", photos, WITH_VARIANTS) for name, photos in sets.items()]
            for name, photos, category in [] if args.latency_only else runs:
                # Median of alternating runs: this shared 2-core machine varies by +-10% run to run.
                sizes = widths.for_type(category)
                raws, tuneds, wholes, steadies = [], [], [], []
                logged = len(procs[1].log())
                for _ in range(args.repeat):
                    raws.append(raw_loop(photos, cores, widths=sizes))
                    tuneds.append(raw_loop(photos, cores, tuned=True, widths=sizes))
                    named = names.get(name.removesuffix("+variants"))
                    whole, steady = asyncio.run(pipeline(settings, photos, category=category, names=named))
                    wholes.append(whole)
                    steadies.append(steady)
                    print(
                        f"  {name}: raw {raws[-1]:.2f}/s, tuned {tuneds[-1]:.2f}/s, worker {steady:.2f}/s", flush=True
                    )
                raw, tuned, whole, steady = (statistics.median(v) for v in (raws, tuneds, wholes, steadies))
                row = {
                    "set": name,
                    "images": len(photos),
                    "variant_widths": list(sizes),
                    "raw_pillow_images_per_s": round(raw, 2),
                    "raw_pillow_tuned_images_per_s": round(tuned, 2),
                    "worker_images_per_s": round(steady, 2),
                    "vs_raw": round(steady / raw, 2),
                    "vs_raw_tuned": round(steady / tuned, 2),
                    "worker_images_per_s_including_fill": round(whole, 2),
                    "runs": [
                        {"raw": round(r, 2), "raw_tuned": round(t, 2), "worker": round(w, 2)}
                        for r, t, w in zip(raws, tuneds, steadies, strict=True)
                    ],
                }
                row["worker_legs_ms"] = legs(procs[1].log()[logged:])
                if sizes and (plain := next((r for r in rows if r["set"] == name.removesuffix("+variants")), None)):
                    # Seconds per image with variants over seconds per image at full size only.
                    row["worker_time_vs_full_only"] = round(plain["worker_images_per_s"] / steady, 2)
                    row["raw_time_vs_full_only"] = round(plain["raw_pillow_images_per_s"] / raw, 2)
                rows.append(row)
                print(row, flush=True)
            procs.append(start("api", ["api"], settings, log_dir))
            wait_port(port)
            light = asyncio.run(latency(settings, warm[0], uploads=20, gap_s=0.5, worker=procs[1]))
            print(light, flush=True)
        finally:
            for p in reversed(procs):
                p.terminate()
    previous = RESULTS / "conversion.json"
    if args.latency_only:
        rows = json.loads(previous.read_text())["throughput"]
    elif previous.exists():  # the sets not run this time keep their last figures
        ran = {r["set"] for r in rows}
        rows = [r for r in json.loads(previous.read_text())["throughput"] if r["set"] not in ran] + rows
    write_results("conversion", {"cores": cores, "throughput": rows, "upload_to_ready_1080p_light_load": light})


if __name__ == "__main__":
    main()
