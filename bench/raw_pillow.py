"""The conversion benchmark's floor: a pool of fresh processes doing what the worker's conversion
does to bytes in memory with Pillow alone (open, exif_transpose, WebP q80, the same variant sizes)."""

from __future__ import annotations

import functools
import io
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

from PIL import Image, ImageOps

from adapters.images.process_pool import prepare_process
from core.settings import Settings


def raw_convert(data: bytes, widths: tuple[int, ...] = ()) -> int:
    with Image.open(io.BytesIO(data)) as img:
        out = io.BytesIO()
        turned = ImageOps.exif_transpose(img)
        turned.save(out, "WEBP", quality=80, method=4)
        total = out.tell()
        for width in (w for w in widths if w < turned.width):
            size = (width, max(1, round(turned.height * width / turned.width)))
            out = io.BytesIO()
            turned.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0).save(out, "WEBP", quality=80, method=4)
            total += out.tell()
        return total


def raw_loop(photos: list[bytes], processes: int, *, tuned: bool = False, widths: tuple[int, ...] = ()) -> float:
    """Images/s of a process pool mapping raw_convert over the photos.

    Fresh processes (forkserver), as the worker's pool has: a forked child would inherit this
    process's heap, already grown by generating the photos, and convert ~5-10% faster than any
    fresh process does. `tuned` gives the processes the worker's memory settings
    (converter.prepare_process), to show what the pipeline itself costs.
    """
    initializer, initargs = (prepare_process, (Settings().max_image_pixels,)) if tuned else (None, ())
    context = multiprocessing.get_context("forkserver")
    convert = functools.partial(raw_convert, widths=widths)
    with ProcessPoolExecutor(processes, mp_context=context, initializer=initializer, initargs=initargs) as pool:
        list(pool.map(convert, photos[:processes]))  # warm the processes
        began = time.perf_counter()
        list(pool.map(convert, photos))
        return len(photos) / (time.perf_counter() - began)
