"""Soak runs (issue 26): mixed traffic at a steady rate against the api, a worker and the relay.

`Traffic` drives the api open-loop at a fixed rate with the mix a platform sees: uploads of
photos and of small images, sync uploads, confirms, reads, and upload commands put straight on
Kafka. `Sampler` records, every interval, each process's RSS, open descriptors and threads (its
children's added: the file writer, conversion processes), MariaDB's connections to the database,
the workers' consumer lag and the outbox's pending rows. `figures` turns the samples into slopes
after warm-up. `bench/soak.py` runs it for 20 minutes; `tests/e2e/test_soak.py` for two, failing
on a clear leak.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import psutil
import pymysql
from aiokafka import AIOKafkaProducer

from core.dsn import DbDsn
from core.events import UPLOAD_REQUESTED, UPLOAD_REQUESTED_TOPIC, Envelope
from tests.processes import Process

MIB = 1024 * 1024
# The mix: weights of each operation (reads and small uploads most, conversions of photos fewer).
MIX = {"photo": 20, "small": 20, "sync": 5, "confirm": 15, "read": 35, "command": 5}


@dataclass
class Traffic:
    """Open-loop mixed traffic; every answer counted by (operation, status)."""

    base_url: str
    bootstrap: str
    photos: list[tuple[str, bytes]]  # (file name, bytes): the extension must match the content
    small: bytes
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # no answer at all, by exception
    accepted: list[tuple[float, str]] = field(default_factory=list)  # (when, image id) of uploads answered 200
    commands: list[str] = field(default_factory=list)
    late_s: float = 0.0  # how far behind schedule the load fell at worst (the client's own limit)

    async def run(self, rate: float, duration_s: float) -> None:
        ops = [op for op, weight in MIX.items() for _ in range(weight)]
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        timeout = aiohttp.ClientTimeout(total=60)
        tasks: set[asyncio.Task[None]] = set()
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                began = time.perf_counter()
                n = 0
                while (now := time.perf_counter()) - began < duration_s:
                    due = began + n / rate
                    if due > now:
                        await asyncio.sleep(due - now)
                    else:
                        self.late_s = max(self.late_s, now - due)
                    task = asyncio.create_task(self._one(session, producer, random.choice(ops)))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    n += 1
                await asyncio.gather(*tasks)
        finally:
            await producer.stop()

    async def _one(self, session: aiohttp.ClientSession, producer: AIOKafkaProducer, op: str) -> None:
        try:
            if op == "command":
                await self._command(producer)
                return
            status = await getattr(self, f"_{op}")(session)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failures[f"{op}: {type(exc).__name__}"] += 1
            return
        if status is not None:
            self.answers[(op, status)] += 1

    async def _upload(self, session: aiohttp.ClientSession, data: bytes, name: str, *, sync: bool = False) -> int:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type="application/octet-stream")
        form.add_field("uploaderId", "soak")
        form.add_field("category", "POST")
        async with session.post(f"{self.base_url}/api/images{'?sync=true' if sync else ''}", data=form) as r:
            body = await r.json(content_type=None)
            if r.status == 200:
                self.accepted.append((time.monotonic(), body["id"]))
            return r.status

    async def _photo(self, session: aiohttp.ClientSession) -> int:
        name, data = random.choice(self.photos)
        return await self._upload(session, data, name)

    async def _small(self, session: aiohttp.ClientSession) -> int:
        return await self._upload(session, self.small, "small.png")

    async def _sync(self, session: aiohttp.ClientSession) -> int:
        return await self._upload(session, self.small, "small.png", sync=True)

    async def _read(self, session: aiohttp.ClientSession) -> int | None:
        if not self.accepted:
            return None
        _, image_id = random.choice(self.accepted)
        async with session.get(f"{self.base_url}/api/v1/images/{image_id}") as r:
            await r.read()
            return r.status

    async def _confirm(self, session: aiohttp.ClientSession) -> int | None:
        """Confirm one or two images uploaded at least 20 s ago (READY by then at this load) to a new reference."""
        old = [n for n, (at, _) in enumerate(self.accepted[:200]) if time.monotonic() - at > 20]
        if not old:
            return None
        picked = [self.accepted.pop(n)[1] for n in sorted(random.sample(old, min(len(old), 2)), reverse=True)]
        body = {"imageIds": picked, "referenceId": f"soak-{uuid.uuid4().hex[:12]}"}
        async with session.post(f"{self.base_url}/api/v1/images/confirm", json=body) as r:
            await r.read()
            return r.status

    async def _command(self, producer: AIOKafkaProducer) -> None:
        image_id = str(uuid.uuid4())
        payload = {
            "imageId": image_id,
            "category": "POST",
            "uploaderId": "soak-service",
            "fileName": "command.png",
            "content": base64.b64encode(self.small).decode(),
        }
        envelope = Envelope(
            str(uuid.uuid4()), UPLOAD_REQUESTED, datetime.now(UTC), UPLOAD_REQUESTED_TOPIC, image_id, payload
        )
        await producer.send_and_wait(UPLOAD_REQUESTED_TOPIC, envelope.to_bytes(), key=image_id.encode())
        self.commands.append(image_id)


def _tree(process: Process) -> dict[str, float]:
    """RSS (MiB), open descriptors and threads of a process and its children together."""
    root = psutil.Process(process.popen.pid)
    members = [root, *root.children(recursive=True)]
    rss = fds = threads = 0
    for p in members:
        try:
            rss += p.memory_info().rss
            fds += p.num_fds()
            threads += p.num_threads()
        except psutil.NoSuchProcess:
            continue
    return {
        "rss_mib": round(rss / MIB, 1),
        "main_rss_mib": round(root.memory_info().rss / MIB, 1),
        "fds": fds,
        "threads": threads,
        "processes": len(members),
    }


class Sampler:
    """Every `interval_s`, in a thread: the processes, MariaDB's connections, consumer lag, outbox pending."""

    def __init__(self, processes: dict[str, Process], dsn: DbDsn, worker_metrics_url: str, interval_s: float) -> None:
        self.processes, self.dsn, self.metrics_url, self.interval_s = processes, dsn, worker_metrics_url, interval_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._began = 0.0

    def __enter__(self) -> Sampler:
        self._began = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = pymysql.connect(
            host=self.dsn.host,
            port=self.dsn.port,
            user=self.dsn.user,
            password=self.dsn.password,
            database=self.dsn.database,
            autocommit=True,
        )
        try:
            while not self._stop.wait(0 if not self.samples else self.interval_s):
                self.samples.append(self.sample(conn))
        finally:
            conn.close()

    def sample(self, conn: pymysql.connections.Connection) -> dict[str, Any]:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s", (self.dsn.database,))
            connections = cur.fetchone()[0] - 1  # not this one
            cur.execute("SELECT COUNT(*) FROM outbox WHERE status = 'PENDING'")
            pending = cur.fetchone()[0]
        return {
            "t_s": round(time.monotonic() - self._began, 1),
            "processes": {name: _tree(p) for name, p in self.processes.items()},
            "db_connections": connections,
            "outbox_pending": pending,
            "consumer_lag": self._lag(),
        }

    def _lag(self) -> int | None:
        import urllib.request

        try:
            with urllib.request.urlopen(self.metrics_url, timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        values = re.findall(r"^worker_consumer_lag_messages\{[^}]*\} ([0-9.e+]+)$", text, flags=re.MULTILINE)
        return int(sum(float(v) for v in values))


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return 0.0 if var == 0 else 60 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var


def figures(samples: list[dict[str, Any]], warm_up_s: float) -> dict[str, Any]:
    """Per process: RSS at warm-up's end and at the end, its slope after warm-up (MiB/min), descriptors, threads."""
    after = [s for s in samples if s["t_s"] >= warm_up_s] or samples[-2:]
    out: dict[str, Any] = {}
    for name in samples[0]["processes"]:
        series = [(s["t_s"], s["processes"][name]) for s in after if name in s["processes"]]
        out[name] = {
            "rss_mib": [series[0][1]["rss_mib"], series[-1][1]["rss_mib"]],
            "rss_slope_mib_per_min": round(slope_per_min([(t, p["rss_mib"]) for t, p in series]), 2),
            "main_rss_slope_mib_per_min": round(slope_per_min([(t, p["main_rss_mib"]) for t, p in series]), 2),
            "fds": [series[0][1]["fds"], series[-1][1]["fds"], max(p["fds"] for _, p in series)],
            "threads": [series[0][1]["threads"], series[-1][1]["threads"], max(p["threads"] for _, p in series)],
        }
    lags = [s["consumer_lag"] for s in samples if s["consumer_lag"] is not None]
    return {
        "processes": out,
        "db_connections_max": max(s["db_connections"] for s in samples),
        "consumer_lag_max": max(lags) if lags else None,
        "outbox_pending_max": max(s["outbox_pending"] for s in samples),
    }


def failed_images(dsn: DbDsn) -> int:
    """FAILED images of the soak's own uploads and commands (a shared broker may carry other tests' commands)."""
    with (
        pymysql.connect(
            host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password, database=dsn.database
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT COUNT(*) FROM images WHERE status = 'FAILED' AND uploader_id IN ('soak', 'soak-service')")
        return int(cur.fetchone()[0])
