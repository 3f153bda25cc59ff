"""The system calls of durable file writes: write, start write-back, fsync, fsync a directory.

Blocking; the storage runs them on worker threads. A batch of new files is written in two passes
(`write_started` for each, then `finish` for each): every file's write-back is under way before
the first fsync waits, so the fsyncs find their data on its way to the disk instead of starting
each transfer in turn. On the development VM that halved the cost per 100 KiB file in a batch of
eight (0.37-0.53 -> 0.20-0.22 ms, bench/NOTES.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range(2), which Python's `os` does not offer (Linux only)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError, TypeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    call.restype = ctypes.c_int
    return call


_SYNC_FILE_RANGE = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # start write-back of the dirty pages; do not wait for it


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file's dirty pages now.

    Only a hint (it waits for nothing and promises nothing): durability still comes from the
    fsync after it, so where the call is missing or fails, nothing but speed is lost.
    """
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


def write_started(path: Path, data: bytes | memoryview, mode: int) -> int:
    """Write `data` as the whole file at `path` (O_EXCL or O_TRUNC) and start its write-back.

    Return the open descriptor, for `finish`. On failure the file is closed and removed.
    """
    fd = written(path, data, mode)
    start_writeback(fd)
    return fd


def adopt(source: Path, path: Path) -> int:
    """Move a spooled file (written, not yet durable) to `path` and start its write-back; return its descriptor.

    A rename on the same file system, a copy otherwise; `finish` then fsyncs it (or removes it).
    """
    try:
        os.replace(source, path)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copyfile(source, path)
        source.unlink(missing_ok=True)
    fd = os.open(path, os.O_RDONLY)
    start_writeback(fd)
    return fd


def finish(path: Path, fd: int) -> None:
    """fsync and close a file from `write_started`; on failure remove it."""
    try:
        os.fsync(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def write_fsynced(path: Path, data: bytes | memoryview, mode: int) -> None:
    """Write `data` as the whole file at `path` and fsync it; remove it on failure."""
    finish(path, written(path, data, mode))


def written(path: Path, data: bytes | memoryview, mode: int) -> int:
    """Create `path` (with `mode`'s extra flags), write all of `data` and return the open descriptor;
    on failure close it and remove the file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return fd


def fsync_dir(directory: Path) -> None:
    """fsync a directory, making the names created in it durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
