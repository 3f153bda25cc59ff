"""The four health components of `/actuator/health` (guide 4.4), each a real check."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomysql

from adapters.db import mariadb
from adapters.kafka import client as kafka

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
        return Component(False, details | {"error": _describe(exc)})


async def check_kafka(bootstrap: str) -> Component:
    """Fetch cluster metadata over a fresh connection."""
    try:
        brokers = await kafka.probe(bootstrap, timeout_s=CHECK_TIMEOUT_S)
        return Component(brokers > 0, {"brokers": brokers})
    except Exception as exc:
        return Component(False, {"error": _describe(exc)})


def check_disk_space(base_dir: Path) -> Component:
    """Compare the free space under the upload dir with the threshold."""
    try:
        usage = shutil.disk_usage(base_dir)
    except OSError as exc:
        return Component(False, {"error": _describe(exc)})
    details = {"total": usage.total, "free": usage.free, "threshold": DISK_FREE_THRESHOLD_BYTES}
    return Component(usage.free >= DISK_FREE_THRESHOLD_BYTES, details)


def check_file_system(base_dir: Path) -> Component:
    """Write, fsync and remove a probe file under the upload dir."""
    details: dict[str, Any] = {"baseDir": str(base_dir)}
    probe = base_dir / f".health-{uuid.uuid4().hex}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
        return Component(True, details | {"writable": True})
    except OSError as exc:
        return Component(False, details | {"writable": False, "error": _describe(exc)})


async def check_all(pool: aiomysql.Pool, bootstrap: str, base_dir: Path) -> dict[str, Component]:
    """Run every component concurrently; file checks run in a thread (they touch the disk)."""
    db, kafka_c, disk, fs = await asyncio.gather(
        check_db(pool),
        check_kafka(bootstrap),
        asyncio.to_thread(check_disk_space, base_dir),
        asyncio.to_thread(check_file_system, base_dir),
    )
    return {"db": db, "diskSpace": disk, "kafka": kafka_c, "fileSystem": fs}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
