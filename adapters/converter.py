"""The process pool conversions run in.

Processes, not threads: Pillow releases the GIL while decoding, but a busy event loop in the same
process makes JPEG decoding wait for the GIL on every block (STYLE.md, webp.py: 0.74x measured).
Each pool process sets Pillow's pixel limit once at start.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import structlog

from adapters.webp import configure_pillow
from core.settings import Settings

T = TypeVar("T")
log = structlog.get_logger(__name__)


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
            initializer=configure_pillow,
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
