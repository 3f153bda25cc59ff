"""The process pool conversions run in, with a memory ceiling and a time limit on each (CONTRACT 4).

Processes, not threads: Pillow releases the GIL while decoding, but a busy event loop in the same
process makes JPEG decoding wait for the GIL on every block (0.74x the throughput, measured in
wave one when conversions ran on threads).
Each pool process sets Pillow's pixel limit once at start, and keeps freed image memory for the
next conversion instead of handing it back to the kernel (see `prepare_process`).

The ceilings (issue 13): a hostile file of a few hundred KB can ask a decoder for gigabytes or
for minutes. Every conversion process runs under `RLIMIT_DATA` (`IMAGES_CONVERT_MEMORY_MB`: the
heap and every private anonymous mapping, so decoded pixels included), and every conversion under
a deadline (`IMAGES_CONVERT_TIMEOUT_S`). The pool is pebble's, which kills the process running a
task past its deadline and starts a new one; a process whose allocation failed exits with
`EXIT_OUT_OF_MEMORY` instead of answering, so it is replaced as well (its heap may be left
fragmented or half-initialised by the codec that failed). Either way the caller gets a
`ConversionFailed` naming the limit, and its image ends FAILED (async) or 400 (sync).

Each conversion process dies with its parent (PR_SET_PDEATHSIG): a pool process holds both ends
of its task pipe, so it would otherwise wait under init forever after a kill -9 of its parent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import pebble
import structlog
from PIL import Image
from prometheus_client import Counter

from adapters.images.codec import ConversionFailed, configure_pillow
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
_PR_SET_PDEATHSIG = 1  # prctl() option, linux/prctl.h
# Exit status of a conversion process whose allocation failed under its ceiling.
EXIT_OUT_OF_MEMORY = 86


class ConversionOutOfMemory(ConversionFailed):
    """The conversion needed more memory than the ceiling of its process."""


class ConversionTimedOut(ConversionFailed):
    """The conversion ran past its time limit."""


class ConversionCrashed(ConversionFailed):
    """The process running the conversion died (a signal from a codec, the kernel, an operator)."""


def prepare_process(max_pixels: int, memory_mb: int = 0) -> None:
    """Initialise a conversion process: death with its parent, its ceiling, Pillow's pixel limit, kept memory."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        libc = None
    if libc is not None and hasattr(libc, "prctl"):  # Linux
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)
    if memory_mb:
        ceiling = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (ceiling, ceiling))
    configure_pillow(max_pixels)
    Image.core.set_blocks_max(PILLOW_BLOCKS_KEPT)
    if libc is not None and hasattr(libc, "mallopt"):  # glibc (musl has none: Pillow's block cache alone helps)
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


def run_bounded(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` in a pool process; an allocation refused by the ceiling ends the process."""
    try:
        return fn(*args)
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)


RESTARTS = Counter(
    "conversion_process_restarts_total",
    "Conversion processes replaced, by why (out_of_memory, timeout, crashed, pool_broken)",
    ["reason"],
)
for _reason in ("out_of_memory", "timeout", "crashed", "pool_broken"):
    RESTARTS.labels(_reason)  # exported as 0 from the start, so a rate() over it has a series


def timed(fn: Callable[..., T], *args: Any) -> tuple[float, T, float]:
    """Run `fn(*args)` in a pool process between two readings of CLOCK_MONOTONIC, which is
    system-wide on Linux, so the caller can tell its wait for a process from the work itself."""
    began = time.monotonic()
    result = fn(*args)
    return began, result, time.monotonic()


class ConverterPool:
    """Conversion processes under a memory ceiling and a per-conversion time limit.

    A process that dies (the ceiling, the deadline, a crash inside a codec, the OOM killer) is
    replaced by the pool; only the conversion it was running fails.
    """

    def __init__(self, settings: Settings, processes: int | None = None) -> None:
        """Start `processes` (default: the setting, 0 = core count) conversion processes."""
        self._memory_mb = settings.convert_memory_mb
        self._timeout_s = settings.convert_timeout_s
        self._processes = processes or settings.effective_convert_processes
        self._initargs = (settings.max_image_pixels, settings.convert_memory_mb)
        self._pool = self._start()

    def _start(self) -> pebble.ProcessPool:
        return pebble.ProcessPool(
            max_workers=self._processes,
            # forkserver: never fork a process that runs an event loop and open sockets.
            context=multiprocessing.get_context("forkserver"),
            initializer=prepare_process,
            initargs=self._initargs,
        )

    async def run_timed(self, fn: Callable[..., T], *args: Any) -> tuple[T, float, float]:
        """Run `fn(*args)` like run(); also return how long it waited for a process and how long it ran (s)."""
        submitted = time.monotonic()
        began, result, ended = await self.run(timed, fn, *args)
        return result, began - submitted, ended - began

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in a pool process; raise a ConversionFailed when it hits a limit or dies.

        pebble gives up on the whole pool when a process dies while no task is running on any
        (e.g. an idle process killed from outside, with tasks queued): then a new pool is started
        and the conversion is tried once more.
        """
        try:
            return await self._run(fn, *args)
        except BrokenProcessPool:
            RESTARTS.labels("pool_broken").inc()
            log.error("conversion_pool_broken", action="restarting the conversion processes")
            broken, self._pool = self._pool, self._start()
            broken.stop()
            return await self._run(fn, *args)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            future = self._pool.schedule(run_bounded, args=(fn, *args), timeout=self._timeout_s)
        except RuntimeError as exc:  # the pool's manager stopped after a BrokenProcessPool
            raise BrokenProcessPool(str(exc)) from exc
        try:
            return await asyncio.wrap_future(future)
        except concurrent.futures.TimeoutError:
            RESTARTS.labels("timeout").inc()  # pebble ends the process that ran past its deadline
            raise ConversionTimedOut(f"conversion took longer than {self._timeout_s:g} s") from None
        except pebble.ProcessExpired as exc:
            if exc.exitcode == EXIT_OUT_OF_MEMORY:
                RESTARTS.labels("out_of_memory").inc()
                raise ConversionOutOfMemory(f"conversion needed more than {self._memory_mb} MB") from None
            RESTARTS.labels("crashed").inc()
            log.warning("conversion_process_died", exitcode=exc.exitcode, pid=exc.pid)
            raise ConversionCrashed(f"the conversion process died (exit code {exc.exitcode})") from None

    def shutdown(self) -> None:
        """Stop the processes, dropping queued work (the caller finished its in-flight units)."""
        self._pool.stop()
        self._pool.join()
