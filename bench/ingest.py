"""Ingest benchmark (issue 3): uploads/s and latency of POST /api/images next to a bare aiohttp handler.

Both servers run as their own process on this machine and get the same load from this process:
1.5 MiB and 100 KiB JPEGs at concurrency 16 and 64, for a fixed time each.
Target: >= 0.8x the bare handler's rate, p99 < 100 ms at concurrency 16.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
from harness import ROOT, bench_environment, logs, start, summary_ms, wait_port, write_results

sys.path.insert(0, str(ROOT))
from tests import images, services

BOUNDARY = "bench-boundary-7d3f"


def body(jpeg: bytes) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + jpeg
        + b"\r\n",
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="uploaderId"\r\n\r\nbench\r\n'.encode(),
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="category"\r\n\r\nPRODUCT\r\n'.encode(),
        f"--{BOUNDARY}--\r\n".encode(),
    ]
    return b"".join(parts)


def jpeg_of_size(target: int) -> bytes:
    side = 256
    while True:
        data = images.noisy_jpeg(side, side * 3 // 4, seed=side)
        if len(data) >= target:
            return data
        side = int(side * 1.25)


def wrk_load(url: str, payload: bytes, concurrency: int, seconds: float) -> dict:
    """Drive the server with wrk (C, two threads): it leaves the CPU to the server under test."""
    body_file = Path("/tmp/images-bench-ingest-body.bin")
    body_file.write_bytes(payload)
    env = {**os.environ, "BODY_FILE": str(body_file), "BOUNDARY": BOUNDARY}
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(ROOT / "bench" / "upload.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    requests, errors, duration_us, p50, p99, mean, worst = (float(v) for v in line.split()[1:])
    return {
        "uploads_per_s": round(requests / (duration_us / 1e6), 1),
        "errors": int(errors),
        "count": int(requests),
        "p50_ms": round(p50 / 1000, 2),
        "p99_ms": round(p99 / 1000, 2),
        "mean_ms": round(mean / 1000, 2),
        "max_ms": round(worst / 1000, 2),
    }


async def load(url: str, payload: bytes, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    stop_at = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_client() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                async with session.post(url, data=payload, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {"uploads_per_s": round(len(latencies) / elapsed, 1), "errors": errors, **summary_ms(latencies)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (the api's file writer), from /proc."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """A process and every process below it."""
    tree, todo = [], [pid]
    while todo:
        member = todo.pop()
        tree.append(member)
        for task in Path(f"/proc/{member}/task").glob("*/children"):
            todo.extend(int(child) for child in task.read_text().split())
    return tree


def measured(url: str, payload: bytes, concurrency: int, seconds: float, pid: int) -> dict:
    """One timed load run, with the server's CPU milliseconds per upload."""
    run = wrk_load if shutil.which("wrk") else (lambda *a: asyncio.run(load(*a)))
    run(url, payload, concurrency, 1.0)  # warm-up
    cpu_before = cpu_seconds(pid)
    result = run(url, payload, concurrency, seconds)
    result["server_cpu_ms_per_upload"] = round((cpu_seconds(pid) - cpu_before) * 1000 / max(1, result["count"]), 3)
    return result


def clear_files(root: Path) -> None:
    """Remove the files both servers stored, keeping directories (the file writer remembers those it made).

    A full run stores ~25 GB; this machine's disk is thin-provisioned and once filled up mid-run
    (ENOSPC answers) with every file kept. Called between timed runs, with nothing in flight.
    """
    for directory, _, names in os.walk(root):
        for name in names:
            Path(directory, name).unlink(missing_ok=True)


def median_row(runs: list[dict]) -> dict:
    """The run with the median rate, with every run's rate listed beside it."""
    ordered = sorted(runs, key=lambda r: r["uploads_per_s"])
    return {**ordered[(len(ordered) - 1) // 2], "runs_uploads_per_s": [r["uploads_per_s"] for r in runs]}


SIZES = {"1.5MiB": int(1.5 * 1024 * 1024), "100KiB": 100 * 1024}
Server = tuple[str, int, int]  # name, port, pid


def paired_rounds(
    servers: tuple[Server, Server],
    size_name: str,
    jpeg: bytes,
    concurrency: int,
    rounds: int,
    seconds: float,
    stored: Path,
) -> list[dict]:
    """Run the bare handler and the service in turn, `rounds` times; one row per server.

    Each round's ratio compares the two servers in the same minutes, so drift in the machine's
    speed hits both; the service's row carries the median ratio and every round's.
    """
    payload = body(jpeg)
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in servers}
    for _ in range(rounds):
        for name, port, pid in servers:
            runs[name].append(measured(f"http://127.0.0.1:{port}/api/images", payload, concurrency, seconds, pid))
            clear_files(stored)
            print(name, size_name, concurrency, runs[name][-1], flush=True)
    (bare, _, _), (service, _, _) = servers
    ratios = [round(s["uploads_per_s"] / b["uploads_per_s"], 2) for s, b in zip(runs[service], runs[bare], strict=True)]
    rows = []
    for name, _, _ in servers:
        row = {"server": name, "size": size_name, "bytes": len(jpeg), "concurrency": concurrency}
        if name == service:
            row |= {"vs_bare": statistics.median(ratios), "runs_vs_bare": ratios}
        rows.append(row | median_row(runs[name]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per case; the median is reported")
    parser.add_argument("--sizes", default="1.5MiB,100KiB")
    parser.add_argument("--concurrency", default="16,64")
    args = parser.parse_args()
    sizes = {name: jpeg_of_size(SIZES[name]) for name in args.sizes.split(",")}
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    with bench_environment("ingest") as settings:
        api_port, bare_port = services.free_port(), services.free_port()
        bare_dir = Path(settings.upload_dir) / "bare"
        bare_dir.mkdir()
        api = start("api", ["api"], replace(settings, api_port=api_port, log_level="INFO"), logs("ingest"))
        bare = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_upload.py"), str(bare_port), str(bare_dir)])
        try:
            wait_port(api_port)
            wait_port(bare_port)
            servers: tuple[Server, Server] = (
                ("bare aiohttp", bare_port, bare.pid),
                ("image-server", api_port, api.popen.pid),
            )
            for size_name, jpeg in sizes.items():
                for concurrency in levels:
                    rows += paired_rounds(
                        servers, size_name, jpeg, concurrency, args.rounds, args.seconds, Path(settings.upload_dir)
                    )
        finally:
            api.terminate()
            bare.terminate()
            bare.wait()
    write_results("ingest", {"load_generator": "wrk -t2" if shutil.which("wrk") else "aiohttp client", "rows": rows})


if __name__ == "__main__":
    main()
