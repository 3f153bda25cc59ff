"""`python -m workers worker | health | send-upload | sweep | watch | token` and the admin commands (see --help)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust

from adapters import health
from adapters.auth.tokens import mint
from adapters.db import mariadb
from adapters.ids import new_id
from adapters.kafka.client import create_producer
from adapters.kafka.security import stop_if_refused
from adapters.logs import start_process
from adapters.storage import open_storage
from core.events import UPLOAD_REQUESTED, UPLOAD_REQUESTED_TOPIC, Envelope
from core.ports import Storage
from core.settings import Settings
from workers import admin, sweeps, watch
from workers.app import create_app
from workers.progress import progress


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m workers")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run a conversion worker until SIGTERM")
    send = sub.add_parser("send-upload", help="put an UPLOAD_REQUESTED command on Kafka")
    send.add_argument("file", type=Path)
    send.add_argument("--category", required=True)
    send.add_argument("--uploader-id", required=True)
    send.add_argument("--image-id", default=None, help="default: a new UUID (printed)")
    send.add_argument("--file-name", default=None, help="default: the file's own name")
    sub.add_parser("health", help="exit 0 when MariaDB and Kafka answer (container HEALTHCHECK)")
    token = sub.add_parser("token", help="print a bearer token signed with IMAGES_AUTH_HS256_SECRET_FILE")
    token.add_argument("subject", help="the caller: an uploader's id, or a service's name")
    token.add_argument("--scope", default="images:upload images:read", help="space-separated scopes")
    token.add_argument(
        "--ref-types", default="", help="reference types a confirming service may touch, comma-separated"
    )
    token.add_argument("--ttl", type=int, default=3600, help="seconds the token is valid (default 3600)")
    sweep = sub.add_parser("sweep", help="run a scheduled clean-up now")
    sweep.add_argument("which", choices=list(sweeps.SWEEPS))
    sweep.add_argument(
        "--older-than",
        type=_minutes,
        metavar="MINUTES",
        help="failed/temp/orphans: what is older than this (default: 24 h for images, 1 h for orphan files)",
    )
    admin.add_commands(sub)
    watch.add_command(sub)
    return parser.parse_args(argv)


def _minutes(raw: str) -> timedelta:
    minutes = float(raw)
    if not minutes >= 0:
        raise argparse.ArgumentTypeError("must be minutes, >= 0")
    return timedelta(minutes=minutes)


def main(argv: list[str] | None = None) -> None:
    """Read settings, configure logging, run the chosen command."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # The commands print their answer (JSON lines, a token, a verdict) on stdout: their logs go to stderr.
    settings = start_process(os.environ, "workers", stream=None if args.command == "worker" else sys.stderr)
    if args.command == "worker":
        stop_if_refused(settings, "workers")
        app = create_app(settings)
        worker = faust.Worker(
            app, loglevel=settings.log_level, override_logging=False, redirect_stdouts=False, quiet=True
        )
        worker.spinner = None  # a terminal spinner would write escape codes into the JSON log stream
        worker.execute_from_commandline()  # handles SIGTERM/SIGINT: stops agents, then services
    elif args.command == "health":
        sys.exit(asyncio.run(check_health(settings)))
    elif args.command == "token":
        types = [t for t in args.ref_types.split(",") if t.strip()]
        print(mint(settings, args.subject, scopes=args.scope.split(), ttl_s=args.ttl, reference_types=types))
    elif args.command == "send-upload":
        asyncio.run(send_upload(settings, args))
    elif args.command == "watch":
        sys.exit(asyncio.run(watch.run(settings, args)))
    elif args.command in admin.COMMANDS:
        sys.exit(asyncio.run(admin.run(settings, args)))
    else:
        asyncio.run(run_sweep(settings, args.which, args.older_than))


def upload_command(
    data: bytes, *, category: str, uploader_id: str, file_name: str, image_id: str | None = None
) -> Envelope:
    """The UPLOAD_REQUESTED command `send-upload` puts on Kafka, the file inline (base64)."""
    image_id = image_id or new_id()
    payload = {
        "imageId": image_id,
        "category": category,
        "uploaderId": uploader_id,
        "fileName": file_name,
        "content": base64.b64encode(data).decode(),
    }
    return Envelope(new_id(), UPLOAD_REQUESTED, datetime.now(UTC), UPLOAD_REQUESTED_TOPIC, image_id, payload)


async def send_upload(settings: Settings, args: argparse.Namespace) -> None:
    """Publish one upload command and print its imageId."""
    env = upload_command(
        args.file.read_bytes(),
        category=args.category,
        uploader_id=args.uploader_id,
        file_name=args.file_name or args.file.name,
        image_id=args.image_id,
    )
    producer = create_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(env.topic, env.to_bytes(), key=env.key.encode())
    finally:
        await producer.stop()
    print(env.key)


async def check_health(settings: Settings) -> int:
    """Check MariaDB, Kafka and the storage like the api's actuator does; return the exit code."""
    try:
        pool = await mariadb.create_pool(settings.db_dsn, size=1)
    except Exception as exc:
        print(f"db=DOWN ({health.describe(exc)})")
        return 1
    try:
        db, kafka, store = await asyncio.gather(
            health.check_db(pool), health.check_kafka(settings), _check_store(settings)
        )
    finally:
        pool.close()
        await pool.wait_closed()
    print(
        " ".join(
            f"{name}={'UP' if c.up else 'DOWN'}" + ("" if c.up else f" ({c.details.get('error')})")
            for name, c in (("db", db), ("kafka", kafka), ("store", store))
        )
    )
    return 0 if db.up and kafka.up and store.up else 1


async def _check_store(settings: Settings) -> health.Component:
    """The store's probe; a bucket that cannot be opened at all is DOWN with the reason."""
    try:
        async with asyncio.timeout(health.CHECK_TIMEOUT_S), open_storage(settings) as storage:
            return await health.check_store(storage)
    except Exception as exc:
        return health.Component(False, {"store": str(settings.storage), "error": f"{type(exc).__name__}: {exc}"})


async def run_sweep(settings: Settings, which: str, older_than: timedelta | None) -> None:
    """Run one sweep now, showing progress: a bar on a terminal, `sweep_progress` log lines otherwise."""
    pool = await mariadb.create_pool(settings.db_dsn, size=2)
    with progress(f"sweep {which}", "sweep_progress", sweep=which) as report:
        try:
            async with open_storage(settings) as storage:
                await _sweep(which, pool, storage, report, older_than)
        finally:
            pool.close()
            await pool.wait_closed()


async def _sweep(
    which: str, pool: Any, storage: Storage, report: Callable[[int], None], older_than: timedelta | None
) -> None:
    done = await sweeps.SWEEPS[which].run(pool, storage, older_than, report)
    print(f"removed {done.rows} rows and {done.files} files")


if __name__ == "__main__":
    main()
