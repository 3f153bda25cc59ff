"""The process pool conversions run in.

Processes, not threads: Pillow releases the GIL while decoding, but a busy event loop in the same
process makes JPEG decoding wait for the GIL on every block (STYLE.md, webp.py: 0.74x measured).
Each pool process sets Pillow's pixel limit once at start.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from adapters.webp import configure_pillow
from core.settings import Settings


def create_converter(settings: Settings, processes: int | None = None) -> ProcessPoolExecutor:
    """Start a pool of `processes` (default: the setting, 0 = core count) conversion processes."""
    # forkserver: never fork a process that runs an event loop and open sockets.
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(
        max_workers=processes or settings.effective_convert_processes,
        mp_context=context,
        initializer=configure_pillow,
        initargs=(settings.max_image_pixels,),
    )
