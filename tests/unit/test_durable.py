from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from adapters.files import fsync as durable


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_sync_file_range_is_found_on_linux() -> None:
    assert durable._SYNC_FILE_RANGE is not None


def test_a_started_file_is_whole_after_finish(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    fd = durable.write_started(path, b"x" * 300_000, os.O_EXCL)
    durable.finish(path, fd)
    assert path.read_bytes() == b"x" * 300_000


def test_a_write_that_fails_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"already here")
    with pytest.raises(FileExistsError):
        durable.write_started(path, b"new", os.O_EXCL)
    assert path.read_bytes() == b"already here"  # O_EXCL refused it before anything was written


def test_a_failed_fsync_removes_the_file_and_closes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.bin"
    fd = durable.write_started(path, b"x", os.O_EXCL)

    def failing_fsync(_: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output"):
        durable.finish(path, fd)
    assert not path.exists()
    with pytest.raises(OSError):
        os.fstat(fd)  # closed
