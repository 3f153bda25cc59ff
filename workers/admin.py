"""Admin commands of `python -m workers` for operators: read what happened, and put failed rows back.

`show IMAGE_ID`, `poison [--limit N]`, `outbox`, `outbox retry [--dry-run]`, `replay REFERENCE
[--type T]`, `requeue [IMAGE_ID ...] [--failed] [--temp-older-than MIN] [--dry-run]`, `quota UPLOADER`. Each prints
JSON (one document, or one object per line for lists) so it can be read or piped into jq.
Exit codes: 0 done, 1 nothing found (an unknown image; nothing to retry or requeue), 2 bad usage
(argparse), 3 partly done (some images could not be requeued; each says why).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from adapters.db import inspection, mariadb, outbox_table
from adapters.db import quotas as quota_usage
from adapters.db.mariadb import MariaDbUnitOfWork
from adapters.db.reference_cache import ReferenceCache
from adapters.ids import new_id
from adapters.storage import open_storage
from core import operations
from core.settings import Settings
from workers.progress import progress

FOUND, NOT_FOUND, PARTLY = 0, 1, 3
COMMANDS = ("show", "poison", "outbox", "replay", "requeue", "quota")


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
    requeue = sub.add_parser(
        "requeue",
        help="convert FAILED (or stuck TEMP) images again while their original is stored: a new IMAGE_UPLOADED each",
    )
    requeue.add_argument("image_ids", nargs="*", help="these images (default: those --failed/--temp-older-than pick)")
    requeue.add_argument("--failed", action="store_true", help="every FAILED image")
    requeue.add_argument("--temp-older-than", type=float, metavar="MINUTES", help="TEMP images older than this")
    requeue.add_argument("--reason", default="operator requeue", help="kept in each image's status history")
    requeue.add_argument("--limit", type=int, default=1000, help="at most this many picked images (default 1000)")
    requeue.add_argument("--dry-run", action="store_true", help="say what would be requeued, change nothing")
    quota = sub.add_parser("quota", help="an uploader's images and bytes in the rolling hour and day, and the limits")
    quota.add_argument("uploader_id")


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
        elif args.command == "requeue":
            return await _requeue(settings, pool, args)
        elif args.command == "quota":
            used = await quota_usage.usage_of(pool, args.uploader_id, datetime.now(UTC))
            limits = settings.quota
            _print(
                {
                    "uploaderId": args.uploader_id,
                    "hour": used["hour"] | {"maxImages": limits.images_per_hour, "maxBytes": limits.bytes_per_hour},
                    "day": used["day"] | {"maxImages": limits.images_per_day, "maxBytes": limits.bytes_per_day},
                },
                indent=True,
            )
        elif args.action == "retry":
            return await _retry(pool, dry_run=args.dry_run)
        else:
            rows = await outbox_table.outbox_by_topic(pool, now=datetime.now(UTC))
            for row in rows:
                _print(row)
            if not rows:  # silence would read as a command that did nothing
                print("no pending or failed outbox rows: every event was published", file=sys.stderr)
        return FOUND
    finally:
        pool.close()
        await pool.wait_closed()


async def _retry(pool: Any, *, dry_run: bool) -> int:
    failed = await outbox_table.failed_rows(pool)
    for row in failed:
        _print(row)
    if not failed:
        print("no failed outbox rows", file=sys.stderr)
        return NOT_FOUND
    if dry_run:
        print(f"would re-queue {len(failed)} rows (dry run: nothing changed)", file=sys.stderr)
        return FOUND
    done = await outbox_table.retry_failed(pool, [r["id"] for r in failed])
    # A re-queued row is published after rows written later for its key; consumers dedupe by eventId.
    print(f"re-queued {done} rows for the relay", file=sys.stderr)
    return FOUND


async def _replay(pool: Any, args: argparse.Namespace) -> int:
    references = ReferenceCache(pool)
    await references.reload()
    uow = _DryRun(pool) if args.dry_run else MariaDbUnitOfWork(pool)
    announced = await operations.replay(
        uow,
        reference_id=args.reference_id,
        reference_type=args.type,
        references=references.data,
        now=datetime.now(UTC),
        new_id=new_id,
    )
    for envelope in announced:
        _print({"topic": envelope.topic, "key": envelope.key, **orjson.loads(envelope.to_bytes())})
    if not announced:
        print(f"no images were ever confirmed to {args.reference_id}: nothing to replay", file=sys.stderr)
        return NOT_FOUND
    print(f"{'would write' if args.dry_run else 'wrote'} {len(announced)} events to the outbox", file=sys.stderr)
    return FOUND


async def _requeue(settings: Settings, pool: Any, args: argparse.Namespace) -> int:
    if not args.image_ids and not args.failed and args.temp_older_than is None:
        print("name images, or pick them with --failed and/or --temp-older-than", file=sys.stderr)
        return NOT_FOUND
    ids = list(args.image_ids)
    if args.failed or args.temp_older_than is not None:
        before = None
        if args.temp_older_than is not None:
            before = datetime.now(UTC) - timedelta(minutes=args.temp_older_than)
        ids += await inspection.requeue_candidates(pool, failed=args.failed, temp_before=before, limit=args.limit)
    outcomes: dict[str, int] = {}
    ids = list(dict.fromkeys(ids))  # named and picked: each image once
    async with open_storage(settings) as storage:
        with progress("requeue", None, total=len(ids)) as report:  # piped, its JSON lines are the progress
            for n, image_id in enumerate(ids, start=1):
                done = await operations.requeue(
                    _DryRun(pool) if args.dry_run else MariaDbUnitOfWork(pool),
                    image_id=image_id,
                    reason=args.reason,
                    original_exists=storage.exists,
                    now=datetime.now(UTC),
                    new_id=new_id,
                )
                outcomes[done.outcome] = outcomes.get(done.outcome, 0) + 1
                _print({"imageId": image_id, "outcome": done.outcome, "reason": done.reason})
                report(n)
    requeued, refused = outcomes.get("requeued", 0), outcomes.get("refused", 0)
    verb = "would requeue" if args.dry_run else "requeued"
    print(f"{verb} {requeued} images, {refused} refused", file=sys.stderr)
    if not requeued:
        return NOT_FOUND
    return PARTLY if refused else FOUND


class _DryRun(MariaDbUnitOfWork):
    """Reads as the real one does, never commits (its transaction rolls back on leaving)."""

    async def commit(self) -> None:
        return None


def _print(row: dict[str, Any], *, indent: bool = False) -> None:
    option = orjson.OPT_INDENT_2 if indent else 0
    sys.stdout.write(orjson.dumps(row, option=option | orjson.OPT_NON_STR_KEYS).decode() + "\n")
