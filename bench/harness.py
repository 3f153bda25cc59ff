"""Shared pieces of the benchmarks: services, processes, stats and the results files.

Benchmarks are scripts, not tests: they print numbers and write `bench/results/<name>.json`;
`bench/RESULTS.md` holds the tables. They use the same native services as the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.db import mariadb  # noqa: E402
from adapters.kafka.client import ensure_topics  # noqa: E402
from core.dsn import parse_dsn  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests import services  # noqa: E402
from tests.processes import Process  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def percentile(values: list[float], p: float) -> float:
    """Return the p-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """Return count, p50, p99, mean and max of latencies given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
    }


def machine() -> dict[str, Any]:
    """Describe where the numbers were taken."""
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_results(name: str, data: dict[str, Any]) -> Path:
    """Write `bench/results/<name>.json` and print it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    print(json.dumps(data, indent=2))
    print(f"written to {path.relative_to(ROOT)}")
    return path


@contextlib.contextmanager
def bench_environment(name: str, **overrides: Any) -> Iterator[Settings]:
    """A fresh database, a fresh tansu broker and an upload dir; torn down afterwards."""
    # Same host: the unix socket, as a deployment with MariaDB beside the service would use.
    local = "mysql://root@127.0.0.1:3306/x" + (
        "?unix_socket=/run/mysqld/mysqld.sock" if Path("/run/mysqld/mysqld.sock").exists() else ""
    )
    server = parse_dsn(os.environ.get("IMAGES_BENCH_DB_DSN", local))
    dsn = replace(server, database=f"images_bench_{name}")
    asyncio.run(services.drop_database(dsn))
    asyncio.run(mariadb.apply_schema(dsn))
    port = services.free_port()
    broker = services.Tansu(port, port)
    broker.start()
    upload_dir = Path(f"/tmp/images-bench-{name}")
    import shutil

    shutil.rmtree(upload_dir, ignore_errors=True)
    upload_dir.mkdir(parents=True)
    defaults: dict[str, Any] = {
        "db_dsn": dsn,
        "kafka_bootstrap": broker.bootstrap,
        "upload_dir": str(upload_dir),
        "log_level": "WARNING",
        "uploaded_partitions": 4,
        "event_partitions": 2,
        "worker_app_id": f"bench-{name}",
    }
    settings = replace(Settings(), **(defaults | overrides))
    asyncio.run(ensure_topics(settings))
    try:
        yield settings
    finally:
        broker.stop()
        asyncio.run(services.drop_database(dsn))
        shutil.rmtree(upload_dir, ignore_errors=True)


def with_api_port(settings: Settings, **overrides: Any) -> Settings:
    """The settings of an api on a free port, its URLs pointing at it."""
    port = services.free_port()
    return replace(settings, api_port=port, base_url=f"http://127.0.0.1:{port}/images/", **overrides)


def logs(bench: str) -> Path:
    """The folder a benchmark's processes log to (kept after the run, for reading)."""
    folder = Path(f"/tmp/images-bench-{bench}-logs")
    folder.mkdir(exist_ok=True)
    return folder


def start(name: str, args: list[str], settings: Settings, log_dir: Path) -> Process:
    """Start a shell process (`python -m ...`) with these settings."""
    return Process(name, args, settings, log_dir)


def wait_port(port: int, timeout_s: float = 30) -> None:
    services.wait_until(lambda: services.port_answers(port), timeout_s=timeout_s, what=f"port {port}")


def now() -> float:
    return time.perf_counter()


async def at_fixed_rate(rate: float, total: int, start_one: Callable[[int], Awaitable[None]]) -> float:
    """Start `start_one(n)` for n in range(total) at `rate` per second (open loop); return the achieved rate."""
    began = time.perf_counter()
    tasks = []
    for n in range(total):
        delay = began + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(start_one(n)))
    await asyncio.gather(*tasks)
    return total / (time.perf_counter() - began)
