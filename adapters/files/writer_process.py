"""Durable file creation in a helper process: the api's event loop never shares its GIL with disk waits.

A batch of uploads' files used to be written and fsync'd on a thread of the api process. Every
one of that thread's system calls (open, write, sync_file_range, fsync, close, per file) gives
the GIL up and has to take it back from a busy event loop: 16 context switches per upload, a
fifth of the process's CPU in futex calls, and a 100 KiB file's write waiting ~0.7 ms for the
GIL (bench/NOTES.md). Here the loop writes each held file's bytes once, into the page cache, as a
file in the spool directory (`spool.spill`: what any upload server does, no disk wait), and hands
the batch's paths over a pipe to a helper process, which moves each into place and fsyncs it on
its own threads (`Directory.create_many`, as for a part spooled while it arrived) and answers with
each file's outcome. The bytes used to cross the pipe as well: three copies instead of one, and a
wake-up of the helper per 64 KiB; 13 % fewer uploads/s at 100 KiB (bench/NOTES.md, issue 26).

Frames, both ways: a 4-byte little-endian length, then that many bytes of JSON. A request is
`id`, `keys` and `paths` (each file's spooled path); a reply is `id` and one error (or null) per
file. The helper's first frame says it is ready.

The helper ignores SIGINT and SIGTERM (a terminal's Ctrl-C reaches the whole process group): it
stops when its stdin closes, after answering every batch it has read; that is when the api
closes it, or dies. If it dies first, every batch it had not answered fails with EIO (whether
their files were made is unknown; a file without a row is the orphan sweep's) and the next
batch starts a new helper. A file spilled here and not moved into place is removed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import structlog

from adapters.files import spool
from core.ports import Content, Spooled

log = structlog.get_logger(__name__)

LENGTH = struct.Struct("<I")  # a frame's length prefix, both ways (writer_helper.py)
READY_TIMEOUT_S = 30
Outcome = list[BaseException | None]


class _Helper:
    """One helper process, its reader of replies and the batches it has not answered yet."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pending: dict[int, asyncio.Future[Outcome]] = {}
        # False from the moment its output ends: no batch is handed to it after that.
        self.alive = True
        self.reader = asyncio.create_task(self._read_replies())

    async def _read_replies(self) -> None:
        try:
            while True:
                reply = await _read_frame(self.proc)
                answer = self.pending.pop(reply["id"], None)
                if answer is not None and not answer.done():
                    answer.set_result([_error(e) for e in reply["errors"]])
        except (asyncio.IncompleteReadError, ConnectionError):
            self.alive = False  # before any await: a batch is either in `pending` now or refused
            code = await self.proc.wait()
            pending, self.pending = self.pending, {}
            if pending:
                log.error("file_writer_died", pid=self.proc.pid, returncode=code, unanswered=len(pending))
            for answer in pending.values():
                if not answer.done():
                    answer.set_exception(_died(f"the file writer process exited (code {code})"))
        except asyncio.CancelledError:  # the loop is shutting down under us
            self.alive = False
            for answer in self.pending.values():
                answer.cancel()
            self.pending.clear()
            raise


class FileWriterProcess:
    """The api's handle on its helper process; `create_many` is Directory.create_many's, awaited."""

    def __init__(self, root: str | Path, *, threads: int = 4) -> None:
        self._root = str(root)
        self._spool_dir = spool.spool_dir(Path(root))
        self._threads = threads
        self._helper: _Helper | None = None
        self._ids = itertools.count()
        self._starting = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """The helper's pid while it runs."""
        helper = self._helper
        return helper.proc.pid if helper is not None and helper.alive else None

    async def start(self) -> None:
        """Start the helper if it is not running (at startup, and again after it died)."""
        await self._running()

    async def _running(self) -> _Helper:
        async with self._starting:
            if self._helper is not None and self._helper.alive:
                return self._helper
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "adapters.files.writer_helper",
                self._root,
                str(self._threads),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            try:  # it says it is ready once it ignores signals: none can kill it half-started
                ready = await asyncio.wait_for(_read_frame(proc), READY_TIMEOUT_S)
            except (TimeoutError, asyncio.IncompleteReadError) as exc:
                proc.kill()
                raise _died(f"the file writer process did not start (code {await proc.wait()})") from exc
            if ready.get("ready") is not True:
                proc.kill()
                raise _died(f"the file writer process said {ready!r} instead of being ready")
            self._helper = _Helper(proc)
            log.info("file_writer_started", pid=proc.pid)
            return self._helper

    async def create_many(self, files: Sequence[tuple[str, Content]]) -> Outcome:
        """Create these files durably in the helper; return each file's error (None: made)."""
        outcome: Outcome = [None] * len(files)
        handed: list[tuple[int, str]] = []  # (index, path) of each file the helper moves into place
        spilled: list[str] = []  # written here: removed unless moved into place
        for n, (_, data) in enumerate(files):
            if isinstance(data, Spooled):
                handed.append((n, data.path))
                continue
            try:
                path = spool.spill(self._spool_dir, data)
            except OSError as exc:  # ENOSPC, say: that file's error
                outcome[n] = exc
                continue
            handed.append((n, path))
            spilled.append(path)
        try:
            if handed:
                answered = await self._hand_over([files[n][0] for n, _ in handed], [path for _, path in handed])
                for (n, _), error in zip(handed, answered, strict=True):
                    outcome[n] = error
        finally:
            # Moved into place: gone from the spool already. Not moved (an error, the helper died): removed.
            for path in spilled:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return outcome

    async def _hand_over(self, keys: list[str], paths: list[str]) -> Outcome:
        helper = self._helper
        if helper is None or not helper.alive:
            helper = await self._running()
        stdin = helper.proc.stdin
        assert stdin is not None
        request_id = next(self._ids)
        answer: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        helper.pending[request_id] = answer  # no await since `alive` was checked
        header = orjson.dumps({"id": request_id, "keys": keys, "paths": paths})
        try:
            stdin.write(LENGTH.pack(len(header)) + header)
            await stdin.drain()
        except (ConnectionError, RuntimeError) as exc:  # the helper is gone; its reader fails the rest
            helper.pending.pop(request_id, None)
            raise _died(f"could not hand the batch over: {exc}") from None
        return await answer

    async def close(self, timeout_s: float = 30) -> None:
        """Let the helper answer what it has read, then stop it."""
        helper = self._helper
        if helper is None:
            return
        proc = helper.proc
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await helper.reader


async def _read_frame(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    (size,) = LENGTH.unpack(await proc.stdout.readexactly(LENGTH.size))
    frame: dict[str, Any] = orjson.loads(await proc.stdout.readexactly(size))
    return frame


def _died(message: str) -> OSError:
    return OSError(errno.EIO, message)


def _error(encoded: dict[str, Any] | None) -> BaseException | None:
    """Rebuild a file's error from its reply: OSErrors keep their errno (and so their subclass)."""
    if encoded is None:
        return None
    if encoded["errno"] is not None:
        return OSError(encoded["errno"], encoded["message"], encoded.get("filename"))
    if encoded["type"] == "ValueError":
        return ValueError(encoded["message"])
    return RuntimeError(f"{encoded['type']}: {encoded['message']}")
