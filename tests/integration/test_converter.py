"""The conversion pool's ceilings (issue 13): memory, time, and processes that die with their parent."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiomysql
import psutil
import pytest

from adapters.db.reference_cache import ReferenceCache
from adapters.files.local import LocalStorage
from adapters.images.process_pool import ConversionOutOfMemory, ConversionTimedOut, ConverterPool
from core.settings import Settings
from tests import images
from tests.integration.conftest import fetch_all, worker_resources
from tests.integration.test_workers import upload
from workers import handlers

pytestmark = pytest.mark.integration


@pytest.fixture
async def bounded(settings: Settings) -> AsyncIterator[ConverterPool]:
    pool = ConverterPool(replace(settings, convert_memory_mb=200, convert_timeout_s=2.0), processes=1)
    yield pool
    pool.shutdown()


async def test_a_conversion_past_its_time_limit_fails_and_the_process_is_replaced(bounded: ConverterPool) -> None:
    first = await bounded.run(os.getpid)
    with pytest.raises(ConversionTimedOut, match="longer than 2 s"):
        await bounded.run(time.sleep, 30)
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE
    assert await bounded.run(os.getpid) != first  # the next conversion runs, in a new process


async def test_an_allocation_past_the_memory_ceiling_fails_and_the_process_is_replaced(bounded: ConverterPool) -> None:
    first = await bounded.run(os.getpid)
    with pytest.raises(ConversionOutOfMemory, match="more than 200 MB"):
        await bounded.run(bytearray, 400 * 1024 * 1024)
    assert await bounded.run(os.getpid) != first
    assert len(await bounded.run(bytearray, 50 * 1024 * 1024)) == 50 * 1024 * 1024  # below it, all is well


async def test_an_image_too_big_for_the_ceiling_ends_failed_with_the_reason(
    settings: Settings, pool: aiomysql.Pool
) -> None:
    cache = ReferenceCache(pool)
    await cache.reload()
    small = replace(settings, convert_memory_mb=160)
    converter = ConverterPool(small, processes=1)
    try:
        res = worker_resources(small, pool, cache, LocalStorage(settings.upload_dir), converter)
        image_id, key, value = await upload(res, images.noisy_jpeg(6000, 4000))  # 24 MP: ~100 MB decoded
        assert await handlers.handle_uploaded(res, key, value) == "FAILED"
        ((reason,),) = await fetch_all(
            pool, "SELECT reason FROM status_history WHERE image_id = %s AND new_status = 'FAILED'", image_id
        )
        assert "more than 160 MB" in reason
        # The same message again is skipped, not converted (and failed) once more.
        assert await handlers.handle_uploaded(res, key, value) == "skipped"
    finally:
        converter.shutdown()


@pytest.mark.parametrize("orientation", [1, 6])
async def test_the_largest_image_allowed_converts_under_the_default_ceiling(orientation: int) -> None:
    """50 MP with real transparency (the most a still needs: ~1.17 GB at its peak), turned or not,
    with more variants than any type has by default (every default width at once)."""
    from io import BytesIO

    from PIL import Image

    from adapters.images.codec import convert

    settings = Settings()
    side = int(settings.max_image_pixels**0.5)
    noise = Image.frombytes("RGBA", (side // 64, side // 64), random.Random(7).randbytes((side // 64) ** 2 * 4))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = BytesIO()
    noise.resize((side, side), Image.Resampling.NEAREST).save(out, "PNG", exif=exif)  # ~300 KB for 50 MP
    converter = ConverterPool(settings, processes=1)
    try:
        widths = sorted({w for _, ws in settings.variant_widths.by_type for w in ws})
        converted = await converter.run(convert, out.getvalue(), settings.max_image_pixels, widths)
    finally:
        converter.shutdown()
    assert (converted.format, converted.width, converted.height) == ("WEBP", side, side)
    assert [w for w, _, _ in converted.variants] == widths


OWNER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from adapters.images.process_pool import ConverterPool
    from core.settings import Settings

    async def main():
        pool = ConverterPool(Settings(convert_processes=2))
        pids = {await pool.run(os.getpid) for _ in range(8)}
        print("ready", flush=True)
        time.sleep(60)

    asyncio.run(main())
    """
)


def test_conversion_processes_die_with_a_killed_parent() -> None:
    with subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True) as owner:
        try:
            assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
            descendants = psutil.Process(owner.pid).children(recursive=True)
            assert len(descendants) >= 3  # the forkserver, its two conversion processes (and the resource tracker)
            owner.send_signal(signal.SIGKILL)
            owner.wait(10)
            _, alive = psutil.wait_procs(descendants, timeout=15)
            assert [p.pid for p in alive if p.is_running()] == []  # nothing is left under init
        finally:
            owner.kill()
