"""Admin commands of `python -m workers` for operators: read what happened, and put failed rows back.

`show IMAGE_ID`, `poison [--limit N]`, `outbox`, `outbox retry [--dry-run]`, `replay REFERENCE
[--type T]`. Each prints JSON
(one document, or one object per line for lists) so it can be read or piped into jq.
Exit codes: 0 done, 1 nothing found (an unknown image; nothing to retry), 2 bad usage (argparse).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from adapters import inspection, mariadb
from adapters.mariadb import MariaDbUnitOfWork
from adapters.reference_cache import ReferenceCache
from core import services
from core.settings import Settings

FOUND, NOT_FOUND = 0, 1


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the admin subcommands on `python -m workers`'s parser."""
    show = sub.add_parser("show", help="an image: its row, storage, status history, sequence, attempts and events")
    show.add_argument("image_id")
    poison = sub.add_parser("poison", help="messages recorded as poison (skipped), newest first")
    poison.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    outbox = sub.add_parser("outbox", help="pending and failed outbox rows per topic; `outbox retry` re-queues failed")
    outbox.add_argument("action", nargs="?", choices=["retry"], help="put FAILED rows back to PENDING for the relay")
    outbox.add_argument("--dry-run", action="store_true", help="list what retry would re-queue, change nothing")
    replay = sub.add_parser(
        "replay", help="announce a reference's current images again (new events), for a consumer that lost them"
    )
    replay.add_argument("reference_id")
    replay.add_argument("--type", default=None, help="only this reference type (default: every type using the id)")
    replay.add_argument("--dry-run", action="store_true", help="print the events, write nothing")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run one admin command; return the exit code."""
    pool = await mariadb.create_pool(settings.db_dsn, size=2)
    try:
        if args.command == "show":
            story = await inspection.image_story(pool, args.image_id)
            if story is None:
                print(f"no image {args.image_id}", file=sys.stderr)
                return NOT_FOUND
            _print(story, indent=True)
        elif args.command == "poison":
            for row in await inspection.poison_messages(pool, limit=args.limit):
                _print(row)
        elif args.command == "replay":
            return await _replay(pool, args)
        elif args.action == "retry":
            return await _retry(pool, dry_run=args.dry_run)
        else:
            for row in await inspection.outbox_by_topic(pool, now=datetime.now(UTC)):
                _print(row)
        return FOUND
    finally:
        pool.close()
        await pool.wait_closed()


async def _retry(pool: Any, *, dry_run: bool) -> int:
    failed = await inspection.failed_outbox(pool)
    for row in failed:
        _print(row)
    if not failed:
        print("no failed outbox rows", file=sys.stderr)
        return NOT_FOUND
    if dry_run:
        print(f"would re-queue {len(failed)} rows (dry run: nothing changed)", file=sys.stderr)
        return FOUND
    done = await inspection.retry_failed_outbox(pool, [r["id"] for r in failed])
    # A re-queued row is published after rows written later for its key; consumers dedupe by eventId.
    print(f"re-queued {done} rows for the relay", file=sys.stderr)
    return FOUND


async def _replay(pool: Any, args: argparse.Namespace) -> int:
    references = ReferenceCache(pool)
    await references.reload()
    uow = _DryRun(pool) if args.dry_run else MariaDbUnitOfWork(pool)
    announced = await services.replay(
        uow,
        reference_id=args.reference_id,
        reference_type=args.type,
        references=references.data,
        now=datetime.now(UTC),
        new_id=lambda: str(uuid.uuid4()),
    )
    for envelope in announced:
        _print({"topic": envelope.topic, "key": envelope.key, **orjson.loads(envelope.to_bytes())})
    if not announced:
        print(f"no images were ever confirmed to {args.reference_id}: nothing to replay", file=sys.stderr)
        return NOT_FOUND
    print(f"{'would write' if args.dry_run else 'wrote'} {len(announced)} events to the outbox", file=sys.stderr)
    return FOUND


class _DryRun(MariaDbUnitOfWork):
    """Reads as the real one does, never commits (its transaction rolls back on leaving)."""

    async def commit(self) -> None:
        return None


def _print(row: dict[str, Any], *, indent: bool = False) -> None:
    option = orjson.OPT_INDENT_2 if indent else 0
    sys.stdout.write(orjson.dumps(row, option=option | orjson.OPT_NON_STR_KEYS).decode() + "\n")
