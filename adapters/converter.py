"""The process pool conversions run in.

Processes, not threads: Pillow releases the GIL while decoding, but a busy event loop in the same
process makes JPEG decoding wait for the GIL on every block (STYLE.md, webp.py: 0.74x measured).
Each pool process sets Pillow's pixel limit once at start, and keeps freed image memory for the
next conversion instead of handing it back to the kernel (see `prepare_process`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import structlog
from PIL import Image

from adapters.webp import configure_pillow
from core.settings import Settings

T = TypeVar("T")
log = structlog.get_logger(__name__)

# A 1080p conversion allocates and frees tens of MB (decoded pixels, the WebP encoder's buffers).
# By default each such buffer is a fresh mmap, and the kernel zero-fills every page of it on first
# touch; measured, that churn is ~10% of a 1080p conversion's CPU. A conversion process instead
# keeps what it freed for the next image: Pillow caches its image blocks, and glibc serves large
# buffers from the heap (up to its 32 MiB limit) and trims the heap only above 128 MiB.
PILLOW_BLOCKS_KEPT = 4  # of Pillow's 16 MiB blocks: the few images one conversion holds at once
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt() parameters, glibc's malloc.h
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024


def prepare_process(max_pixels: int) -> None:
    """Initialise a conversion process: Pillow's pixel limit, and memory kept between conversions."""
    configure_pillow(max_pixels)
    Image.core.set_blocks_max(PILLOW_BLOCKS_KEPT)
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name)
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        pass  # not glibc (musl has no mallopt): Pillow's block cache alone still helps


class ConverterPool:
    """A process pool that replaces itself when one of its processes dies.

    A ProcessPoolExecutor whose worker was killed (OOM killer, a crash inside a codec) refuses all
    further work; without a replacement every later conversion of the process would fail.
    """

    def __init__(self, settings: Settings, processes: int | None = None) -> None:
        """Start `processes` (default: the setting, 0 = core count) conversion processes."""
        self._max_pixels = settings.max_image_pixels
        self._processes = processes or settings.effective_convert_processes
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # forkserver: never fork a process that runs an event loop and open sockets.
        return ProcessPoolExecutor(
            max_workers=self._processes,
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=prepare_process,
            initargs=(self._max_pixels,),
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in a pool process; on a broken pool, start a new one and try once more."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except BrokenProcessPool:
            log.error("conversion_pool_broken", action="restarting the conversion processes")
            broken, self._executor = self._executor, self._start()
            broken.shutdown(wait=False, cancel_futures=True)
            return await loop.run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        """Stop the processes, dropping queued work (the caller finished its in-flight units)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
