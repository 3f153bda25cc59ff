"""The four health components of `/actuator/health` (guide 4.4), each a real check."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomysql

from adapters.db import mariadb
from adapters.kafka import client as kafka
from core.ports import Storage
from core.settings import Settings

CHECK_TIMEOUT_S = 2.0
DISK_FREE_THRESHOLD_BYTES = 10 * 1024 * 1024  # Spring Boot's default for diskSpace


@dataclass(frozen=True)
class Component:
    """One component's verdict."""

    up: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the actuator shape `{"status": ..., "details": ...}`."""
        return {"status": "UP" if self.up else "DOWN", "details": self.details}


async def check_db(pool: aiomysql.Pool) -> Component:
    """Run the validation query within the check timeout."""
    details: dict[str, Any] = {"database": "MariaDB", "validationQuery": "SELECT 1"}
    try:
        await asyncio.wait_for(mariadb.ping(pool), CHECK_TIMEOUT_S)
        return Component(True, details)
    except Exception as exc:
        return Component(False, details | {"error": describe(exc)})


async def check_kafka(settings: Settings) -> Component:
    """Fetch cluster metadata over a fresh connection (TLS and SASL as the settings say)."""
    try:
        brokers = await kafka.probe(settings, timeout_s=CHECK_TIMEOUT_S)
        return Component(brokers > 0, {"brokers": brokers})
    except Exception as exc:
        return Component(False, {"error": describe(exc)})


def check_disk_space(base_dir: Path) -> Component:
    """Compare the free space under this process's directory (the directory, or S3's scratch) with the threshold."""
    try:
        usage = shutil.disk_usage(base_dir)
    except OSError as exc:
        return Component(False, {"error": describe(exc)})
    details = {"total": usage.total, "free": usage.free, "threshold": DISK_FREE_THRESHOLD_BYTES}
    return Component(usage.free >= DISK_FREE_THRESHOLD_BYTES, details)


async def check_store(storage: Storage) -> Component:
    """Write and remove a probe in the storage (a file under the root, or an object in the bucket)."""
    try:
        up, details = await asyncio.wait_for(storage.check(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return Component(False, {"store": storage.name, "error": f"no answer within {CHECK_TIMEOUT_S:g} s"})
    return Component(up, details)


async def check_all(pool: aiomysql.Pool, settings: Settings, storage: Storage) -> dict[str, Component]:
    """Run every component concurrently; `fileSystem` is the storage, wherever it is (guide 4.4, issue 14)."""
    db, kafka_c, disk, store = await asyncio.gather(
        check_db(pool),
        check_kafka(settings),
        asyncio.to_thread(check_disk_space, storage.local_dir),
        check_store(storage),
    )
    return {"db": db, "diskSpace": disk, "kafka": kafka_c, "fileSystem": store}


def describe(exc: BaseException) -> str:
    """An error in one line, with its cause: a TLS failure shows under aiomysql's "Can't connect"."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    cause = exc.__cause__
    return text if cause is None else f"{text} ({describe(cause)})"
