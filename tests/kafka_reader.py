"""Reading topics back in tests: every partition from the beginning, filtered, until a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass(frozen=True)
class Message:
    """One record read back."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: dict[str, Any]


async def read_messages(
    bootstrap: str,
    topic: str,
    *,
    match: Callable[[Message], bool],
    count: int,
    timeout_s: float = 20.0,
    settle_s: float = 0.0,
    security: dict[str, Any] | None = None,
) -> list[Message]:
    """Return the first `count` matching messages (in partition order); fail at the deadline.

    With `settle_s`, keep reading that long after reaching `count` and return everything matched,
    so a test can prove that no extra message arrived.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest", **(security or {})
    )
    await consumer.start()
    found: list[Message] = []
    try:
        deadline = time.monotonic() + timeout_s
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic) or None
            if partitions is None:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.1)
        if partitions is None:
            raise AssertionError(f"topic {topic} does not exist")
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        settle_until: float | None = None
        while True:
            now = time.monotonic()
            if settle_until is not None and now >= settle_until:
                return found
            if settle_until is None and now >= deadline:
                raise AssertionError(f"found {len(found)} of {count} messages on {topic}: {found}")
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    m = Message(
                        r.topic, r.partition, r.offset, r.key.decode() if r.key else None, orjson.loads(r.value)
                    )
                    if match(m):
                        found.append(m)
            if len(found) >= count and settle_until is None:
                if settle_s <= 0:
                    return found[:count]
                settle_until = time.monotonic() + settle_s
    finally:
        await consumer.stop()
