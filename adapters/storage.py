"""Local-disk blob store. Keys are relative paths (`PRODUCT/2025/01/20/<uuid>.webp`).

Every write goes to a temporary file in the target directory, is fsync'd, then renamed into
place, and the directory is fsync'd: a key either holds the whole file or does not exist.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

TMP_SUFFIX = ".part"


class FileStore:
    """Files under one root; blocking calls: run them in a thread from async code."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._made_dirs: set[Path] = set()

    def path(self, key: str) -> Path:
        """Return the absolute path of a key; refuse keys that could leave the root.

        A lexical check (no `..`, not absolute) instead of resolve(): keys are ours, and this sits
        on the upload path, where resolve()'s lstat of every component showed in profiles.
        """
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in ("..", ".", "") for p in parts):
            raise ValueError(f"storage key {key!r} leaves the storage root")
        return self.root.joinpath(*parts)

    def write(self, key: str, data: bytes | memoryview) -> int:
        """Write a whole file durably and atomically; return its size."""
        target = self.path(key)
        if target.parent not in self._made_dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(target.parent)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}{TMP_SUFFIX}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        return len(data)

    def read(self, key: str) -> bytes:
        """Return a file's bytes."""
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        """Tell whether a key holds a file."""
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        """Return a file's size in bytes."""
        return self.path(key).stat().st_size

    def remove(self, key: str) -> bool:
        """Remove a file if it is there; return whether it was."""
        try:
            self.path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def walk(self, *, older_than_s: float) -> Iterator[str]:
        """Yield the keys of files last modified more than `older_than_s` ago."""
        cutoff = time.time() - older_than_s
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                full = Path(dirpath) / name
                try:
                    if full.stat().st_mtime < cutoff:
                        yield full.relative_to(self.root).as_posix()
                except FileNotFoundError:
                    continue


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
