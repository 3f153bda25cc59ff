"""The file writer's helper process (see writer_process.py): read batches, create their files, answer.

Runs as `python -m adapters.files.writer_helper ROOT THREADS`, started by FileWriterProcess.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

import orjson

from adapters.files.directory import Directory
from adapters.files.writer_process import LENGTH, Outcome
from core.ports import Content, Spooled


def _encode(exc: BaseException | None) -> dict[str, Any] | None:
    if exc is None:
        return None
    if isinstance(exc, OSError) and exc.errno is not None:
        return {"type": type(exc).__name__, "errno": exc.errno, "message": exc.strerror, "filename": exc.filename}
    return {"type": type(exc).__name__, "errno": None, "message": str(exc)}


def serve(root: str, threads: int, requests: BinaryIO, replies: BinaryIO) -> None:
    """The helper's loop: read batches until EOF, create each on a thread, answer each."""
    store = Directory(root)
    lock = threading.Lock()
    _write_frame(replies, orjson.dumps({"ready": True}))

    def create(request_id: int, files: list[tuple[str, Content]]) -> None:
        try:
            outcome: Outcome = store.create_many(files)
        except BaseException as exc:  # every file of the batch failed alike
            outcome = [exc] * len(files)
        reply = orjson.dumps({"id": request_id, "errors": [_encode(e) for e in outcome]}, default=str)
        with lock:
            _write_frame(replies, reply)

    with ThreadPoolExecutor(threads, thread_name_prefix="file-writer") as pool:
        while (request := _read_request(requests)) is not None:
            pool.submit(create, *request)


def _write_frame(stream: BinaryIO, body: bytes) -> None:
    stream.write(LENGTH.pack(len(body)) + body)
    stream.flush()


def _read_request(stream: BinaryIO) -> tuple[int, list[tuple[str, Content]]] | None:
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    size = LENGTH.unpack(head)[0]
    body = stream.read(size)
    if len(body) < size:
        return None  # cut off: the api is gone, nobody would read the answer
    header = orjson.loads(body)
    # Each file was written by the api to its spool directory: moved into place here, then made durable.
    files = zip(header["keys"], header["paths"], strict=True)
    return header["id"], [(key, Spooled(path, 0, "")) for key, path in files]


def main(argv: Sequence[str]) -> None:
    """`python -m adapters.files.writer_helper ROOT THREADS`: run by FileWriterProcess, not by hand."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    root, threads = argv
    serve(root, int(threads), sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main(sys.argv[1:])
