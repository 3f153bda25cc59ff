"""Overload benchmark (issue 26): many clients at once against one api process, its memory and its answers.

Each scenario starts a fresh api process (`python -m api`, the file store) and sends every client's
requests at once, each client on a connection of its own:
- `large`: 32 clients x 9 PNGs of ~8.3 MiB (the issue's first finding: 2.3 GiB offered at once);
- `largest`: 64 clients x 10 PNGs of ~9.5 MiB (6 GiB offered);
- `small`: 512 clients x one 100 KiB JPEG.
Large requests are sent both without and with `Expect: 100-continue` (curl sends it for bodies
over 1 MiB; aiohttp's client and many others do not): without it a shed client is told only once
it has sent its body, which the api reads and discards.
The api's RSS (and its file writer's) is sampled every 20 ms: the peak growth over its idle RSS
is the figure (target: at most 512 MiB whatever the load). Every answer must be 200 or 503, none
a reset connection; the time to a 503 says how soon a shed client is told. Accepted throughput
(MiB/s of files answered 200) is set next to an unloaded run: the same requests one at a time.
`--unbounded` runs `large` once more with the admission bounds out of the way, to show what they
prevent.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import psutil
from harness import ROOT, bench_environment, logs, start, wait_port, with_api_port, write_results
from ingest import jpeg_of_size

sys.path.insert(0, str(ROOT))
from core.settings import Settings

BOUNDARY = "overload-boundary-5e1a"
MIB = 1024 * 1024


def noisy_png(side: int, seed: int) -> bytes:
    """An RGB PNG of noise: it does not compress, so its size is about side * side * 3."""
    import io
    import random

    from PIL import Image

    picture = Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3))
    out = io.BytesIO()
    picture.save(out, "PNG", compress_level=1)
    return out.getvalue()


def body(files: list[bytes], name: str, content_type: str) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{n}.{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
        for n, data in enumerate(files)
    ]
    parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="uploaderId"\r\n\r\nbench\r\n'.encode())
    parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="category"\r\n\r\nPOST\r\n'.encode())
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


@dataclass
class Scenario:
    name: str
    clients: int
    payload: bytes
    file_bytes: int  # of the files in one request


@dataclass
class Answers:
    statuses: dict[str, int] = field(default_factory=dict)
    to_503_s: list[float] = field(default_factory=list)
    to_200_s: list[float] = field(default_factory=list)

    def count(self, what: str) -> None:
        self.statuses[what] = self.statuses.get(what, 0) + 1


class RssSampler:
    """Samples the RSS of a process and its children every `interval_s`, in a thread."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.peak_main = self.peak_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> tuple[int, int]:
        main = self.process.memory_info().rss
        children = sum(c.memory_info().rss for c in self.process.children(recursive=True))
        return main, children

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                main, children = self.rss()
            except psutil.Error:
                return
            self.peak_main, self.peak_children = max(self.peak_main, main), max(self.peak_children, children)
            time.sleep(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def send(
    session: aiohttp.ClientSession, url: str, payload: bytes, answers: Answers, *, expect: bool = False
) -> None:
    started = time.perf_counter()
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    try:
        async with session.post(url, data=payload, headers=headers, expect100=expect) as r:
            await r.read()
            status = r.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        answers.count(f"no answer ({type(exc).__name__})")
        return
    took = time.perf_counter() - started
    answers.count(str(status))
    (answers.to_503_s if status == 503 else answers.to_200_s).append(took)


async def at_once(url: str, scenario: Scenario, *, expect: bool) -> tuple[Answers, float]:
    answers = Answers()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        sending = [send(session, url, scenario.payload, answers, expect=expect) for _ in range(scenario.clients)]
        await asyncio.gather(*sending)
    return answers, time.perf_counter() - started


async def one_at_a_time(url: str, scenario: Scenario, requests: int) -> float:
    """Accepted MiB/s of files with one client sending the requests in turn (no load)."""
    answers = Answers()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        started = time.perf_counter()
        for _ in range(requests):
            await send(session, url, scenario.payload, answers)
    took = time.perf_counter() - started
    return round(answers.statuses.get("200", 0) * scenario.file_bytes / MIB / took, 1)


def seconds(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 3),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }


def run(
    settings: Settings, scenario: Scenario, *, unbounded: bool, expect: bool, baseline_requests: int
) -> dict[str, Any]:
    overrides: dict[str, Any] = {"max_inflight_bytes": 2**62, "max_inflight_uploads": 10**6} if unbounded else {}
    api_settings = with_api_port(settings, **overrides)
    api = start(f"api-{scenario.name}", ["api"], api_settings, logs("overload"))
    try:
        wait_port(api_settings.api_port)
        url = f"http://127.0.0.1:{api_settings.api_port}/api/images"
        unloaded = asyncio.run(one_at_a_time(url, scenario, baseline_requests))
        time.sleep(1)
        sampler = RssSampler(api.popen.pid)
        idle_main, idle_children = sampler.rss()
        with sampler:
            answers, took = asyncio.run(at_once(url, scenario, expect=expect))
        accepted = answers.statuses.get("200", 0)
        return {
            "scenario": scenario.name,
            "bounds": "off"
            if unbounded
            else f"{settings.max_inflight_bytes // MIB} MiB, {settings.max_inflight_uploads} uploads",
            "clients": scenario.clients,
            "expect_100_continue": expect,
            "request_mib": round(len(scenario.payload) / MIB, 1),
            "offered_mib": round(scenario.clients * len(scenario.payload) / MIB),
            "answers": answers.statuses,
            "idle_rss_mib": round(idle_main / MIB),
            "peak_rss_growth_mib": round((sampler.peak_main - idle_main) / MIB),
            "writer_peak_rss_growth_mib": round((sampler.peak_children - idle_children) / MIB),
            "time_to_503_s": seconds(answers.to_503_s),
            "time_to_200_s": seconds(answers.to_200_s),
            "wall_s": round(took, 1),
            "accepted_mib_per_s": round(accepted * scenario.file_bytes / MIB / took, 1),
            "unloaded_mib_per_s": unloaded,
        }
    finally:
        api.terminate()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", default="small,large,largest")
    parser.add_argument("--unbounded", action="store_true", help="also run `large` with the bounds off")
    parser.add_argument("--baseline-requests", type=int, default=4)
    args = parser.parse_args()
    large, largest = noisy_png(1700, 1), noisy_png(1780, 2)  # ~8.3 MiB and ~9.1 MiB, under the 10 MiB limit
    small = jpeg_of_size(100 * 1024)
    scenarios = {
        "large": Scenario("large", 32, body([large] * 9, "png", "image/png"), 9 * len(large)),
        "largest": Scenario("largest", 64, body([largest] * 10, "png", "image/png"), 10 * len(largest)),
        "small": Scenario("small", 512, body([small], "jpg", "image/jpeg"), len(small)),
    }
    rows = []
    with bench_environment("overload") as settings:
        settings = replace(settings, log_level="WARNING")
        for name in args.scenarios.split(","):
            # Large bodies both ways: curl sends `Expect: 100-continue` over 1 MiB, aiohttp and others do not.
            for expect in (False, True) if name != "small" else (False,):
                row = run(
                    settings, scenarios[name], unbounded=False, expect=expect, baseline_requests=args.baseline_requests
                )
                rows.append(row)
                print(row, flush=True)
        if args.unbounded:
            row = run(
                settings, scenarios["large"], unbounded=True, expect=False, baseline_requests=args.baseline_requests
            )
            rows.append(row)
            print(row, flush=True)
    write_results("overload", {"rows": rows, "file_sizes": {k: s.file_bytes for k, s in scenarios.items()}})


if __name__ == "__main__":
    main()
