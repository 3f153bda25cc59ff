"""`python -m workers watch TOPIC`: print a topic's messages as JSON lines, as a consumer sees them.

Reads every partition from the beginning (or only new messages with `--new`), without joining
a consumer group, so it never takes messages from the fleet. Stops after `--count` matching
messages (exit 0) or `--timeout` seconds (exit 1 when fewer came; 0 with no `--count`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from adapters.kafka.security import client_auth
from core.settings import Settings


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `watch` on `python -m workers`'s parser."""
    watch = sub.add_parser("watch", help="print a topic's messages as JSON lines (no consumer group)")
    watch.add_argument("topic", help="e.g. product-image-changed, image-processed")
    watch.add_argument("--key", default=None, help="only messages with this key (a referenceId, an imageId)")
    watch.add_argument("--count", type=int, default=None, help="stop after this many messages")
    watch.add_argument("--timeout", type=float, default=30.0, help="stop after this many seconds (default 30)")
    watch.add_argument("--new", action="store_true", help="only messages that arrive from now on")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Print matching messages until the count or the timeout; return the exit code."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, **client_auth(settings)
    )
    await consumer.start()
    seen = 0
    try:
        deadline = time.monotonic() + args.timeout
        partitions = consumer.partitions_for_topic(args.topic)
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(args.topic)
            await asyncio.sleep(0.1)
        if not partitions:
            print(f"no topic {args.topic}", file=sys.stderr)
            return 1
        tps = [TopicPartition(args.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await (consumer.seek_to_end(*tps) if args.new else consumer.seek_to_beginning(*tps))
        while (args.count is None or seen < args.count) and (left := deadline - time.monotonic()) > 0:
            batches = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for records in batches.values():
                for r in records:
                    key = r.key.decode(errors="replace") if r.key else None
                    if args.key is not None and key != args.key:
                        continue
                    value = orjson.loads(r.value) if r.value else None
                    line = {"topic": r.topic, "partition": r.partition, "offset": r.offset, "key": key, "value": value}
                    sys.stdout.write(orjson.dumps(line).decode() + "\n")
                    sys.stdout.flush()
                    seen += 1
                    if args.count is not None and seen >= args.count:
                        return 0
    finally:
        await consumer.stop()
    return 0 if args.count is None or seen >= args.count else 1
