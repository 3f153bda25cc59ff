"""The outbox relay against real MariaDB and a real broker: order, crashes, outages, replicas."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiomysql
import pytest

from adapters.db.mariadb import MariaDbUnitOfWork
from adapters.kafka.client import create_producer, ensure_topics
from core.events import Envelope
from core.settings import Settings
from outbox.relay import Relay
from tests import services
from tests.integration.conftest import fetch_all
from tests.kafka_reader import Message, read_messages
from tests.processes import Process
from tests.proxy import TcpProxy

TOPIC = "post-image-changed"


def envelope(run: str, key: str, seq: int) -> Envelope:
    return Envelope(
        str(uuid.uuid4()),
        "IMAGES_CHANGED",
        datetime.now(UTC),
        TOPIC,
        f"{run}-{key}",
        {"referenceId": f"{run}-{key}", "images": [], "seq": seq},
    )


async def write_rows(
    pool: aiomysql.Pool, run: str, *, keys: int, per_key: int, per_txn: int = 10, start_seq: int = 0
) -> list[Envelope]:
    """Write rows in transactions of `per_txn`, keys interleaved; return them in commit order."""
    rows = [envelope(run, f"k{k}", s) for s in range(start_seq, start_seq + per_key) for k in range(keys)]
    for start in range(0, len(rows), per_txn):
        async with MariaDbUnitOfWork(pool) as uow:
            for env in rows[start : start + per_txn]:
                await uow.outbox.add(env)
            await uow.commit()
    return rows


def of_run(run: str):  # type: ignore[no-untyped-def]
    return lambda m: (m.key or "").startswith(run + "-")


def assert_complete_and_ordered(written: list[Envelope], got: list[Message]) -> None:
    """Every row arrived; duplicates carry the same eventId; after eventId dedupe each key is in order."""
    ids = {e.event_id for e in written}
    assert {m.value["eventId"] for m in got} == ids
    seen: set[str] = set()
    per_key: dict[str, list[int]] = defaultdict(list)
    for m in sorted(got, key=lambda m: (m.partition, m.offset)):
        if m.value["eventId"] in seen:
            continue
        seen.add(m.value["eventId"])
        per_key[m.key or ""].append(m.value["payload"]["seq"])
    for key, seqs in per_key.items():
        assert seqs == sorted(seqs), f"key {key} reordered: {seqs}"


async def pending(pool: aiomysql.Pool) -> int:
    return (await fetch_all(pool, "SELECT COUNT(*) FROM outbox WHERE status = 'PENDING'"))[0][0]


async def run_relay(settings: Settings, pool: aiomysql.Pool) -> tuple[Relay, asyncio.Task[None]]:
    relay = Relay(settings, pool, create_producer(settings))
    return relay, asyncio.create_task(relay.run())


async def stop_relay(relay: Relay, task: asyncio.Task[None]) -> None:
    relay.stop()
    await asyncio.wait_for(task, 20)
    await relay.close()


async def test_rows_appear_on_their_topics_in_commit_order_per_key(settings: Settings, pool: aiomysql.Pool) -> None:
    run = uuid.uuid4().hex[:8]
    written = await write_rows(pool, run, keys=5, per_key=20)
    relay, task = await run_relay(settings, pool)
    try:
        got = await read_messages(settings.kafka_bootstrap, TOPIC, match=of_run(run), count=len(written), timeout_s=30)
        assert_complete_and_ordered(written, got)
        assert all(m.key == m.value["payload"]["referenceId"] for m in got)
        await services.eventually(lambda: _none_pending(pool), timeout_s=10, what="all rows marked published")
    finally:
        await stop_relay(relay, task)


async def _none_pending(pool: aiomysql.Pool) -> bool:
    return await pending(pool) == 0


async def test_a_row_too_large_to_publish_is_failed_without_blocking_others(
    settings: Settings, pool: aiomysql.Pool
) -> None:
    run = uuid.uuid4().hex[:8]
    big = replace(envelope(run, "k0", 0), payload={"referenceId": f"{run}-k0", "blob": "x" * 2_000_000, "seq": 0})
    async with MariaDbUnitOfWork(pool) as uow:
        await uow.outbox.add(big)
        await uow.commit()
    written = await write_rows(pool, run, keys=2, per_key=3)
    relay, task = await run_relay(settings, pool)
    try:
        got = await read_messages(settings.kafka_bootstrap, TOPIC, match=of_run(run), count=len(written), timeout_s=30)
        assert {m.value["eventId"] for m in got} == {e.event_id for e in written}
        row = await services.eventually(
            lambda: _failed_row(pool, big.event_id), timeout_s=10, what="the large row marked FAILED"
        )
        assert "MessageSizeTooLarge" in row[1]
    finally:
        await stop_relay(relay, task)


async def _failed_row(pool: aiomysql.Pool, event_id: str):  # type: ignore[no-untyped-def]
    rows = await fetch_all(pool, "SELECT status, last_error FROM outbox WHERE event_id = %s", event_id)
    return rows[0] if rows and rows[0][0] == "FAILED" else None


async def test_relay_killed_mid_batch_republishes_with_the_same_event_ids(
    settings: Settings, pool: aiomysql.Pool, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    written = await write_rows(pool, run, keys=8, per_key=250, per_txn=100)
    slow = replace(settings, relay_batch_size=50)
    first = Process("relay-1", ["outbox"], slow, tmp_path)
    try:
        total = len(written)
        await services.eventually(
            lambda: _published_between(pool, 1, total - 1), timeout_s=30, what="the relay to be part-way through"
        )
    finally:
        first.kill()
    assert await pending(pool) > 0, "the relay finished before it was killed: the test proved nothing"
    second = Process("relay-2", ["outbox"], slow, tmp_path)
    try:
        await services.eventually(lambda: _none_pending(pool), timeout_s=60, what="the restarted relay to drain")
        got = await read_messages(
            settings.kafka_bootstrap, TOPIC, match=of_run(run), count=len(written), timeout_s=30, settle_s=1
        )
        assert_complete_and_ordered(written, got)
    finally:
        assert second.terminate() == 0


async def _published_between(pool: aiomysql.Pool, low: int, high: int) -> bool:
    n = (await fetch_all(pool, "SELECT COUNT(*) FROM outbox WHERE status = 'PUBLISHED'"))[0][0]
    return low <= n <= high


@pytest.fixture
async def broker_behind_proxy():  # type: ignore[no-untyped-def]
    """A broker that advertises a proxy's port, so cutting the proxy is a broker outage that keeps its data."""
    proxy_port, broker_port = services.free_port(), services.free_port()
    broker = services.Tansu(broker_port, advertised=proxy_port)
    broker.start()
    proxy = TcpProxy(proxy_port, broker_port)
    await proxy.start()
    yield broker, proxy
    await proxy.cut()
    broker.stop()


async def test_rows_written_during_a_broker_outage_all_arrive_in_order(
    settings: Settings,
    pool: aiomysql.Pool,
    broker_behind_proxy,  # type: ignore[no-untyped-def]
) -> None:
    broker, proxy = broker_behind_proxy
    local = replace(settings, kafka_bootstrap=broker.bootstrap)
    await ensure_topics(local)
    run = uuid.uuid4().hex[:8]
    relay, task = await run_relay(local, pool)
    try:
        written = await write_rows(pool, run, keys=4, per_key=5)
        await services.eventually(lambda: _none_pending(pool), timeout_s=20, what="rows before the outage published")
        await proxy.cut()
        deadline = asyncio.get_running_loop().time() + 10
        seq = 5
        while asyncio.get_running_loop().time() < deadline:  # keep writing through the 10 s outage
            written += await write_rows(pool, run, keys=4, per_key=1, start_seq=seq)
            seq += 1
            await asyncio.sleep(0.5)
        assert await pending(pool) > 0
        await proxy.restore()
        got = await read_messages(local.kafka_bootstrap, TOPIC, match=of_run(run), count=len(written), timeout_s=60)
        assert_complete_and_ordered(written, got)
    finally:
        await stop_relay(relay, task)


async def test_two_relays_lose_nothing_and_reorder_no_key(
    settings: Settings, pool: aiomysql.Pool, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    relays = [Process(f"relay-{n}", ["outbox"], settings, tmp_path) for n in (1, 2)]
    try:
        written: list[Envelope] = []
        for burst in range(10):
            written += await write_rows(pool, run, keys=6, per_key=10, per_txn=7, start_seq=burst * 10)
        got = await read_messages(
            settings.kafka_bootstrap, TOPIC, match=of_run(run), count=len(written), timeout_s=60, settle_s=1
        )
        assert_complete_and_ordered(written, got)
        active = [p.name for p in relays if "relay_became_active" in p.log()]
        assert len(active) == 1, f"exactly one relay must be active, saw {active}"
    finally:
        for p in relays:
            assert p.terminate() == 0


async def test_a_standby_takes_over_within_seconds_when_the_active_relay_dies(
    settings: Settings, pool: aiomysql.Pool, tmp_path: Path
) -> None:
    first = Process("relay-a", ["outbox"], settings, tmp_path)
    await services.eventually(lambda: "relay_became_active" in first.log(), timeout_s=20, what="relay-a active")
    second = Process("relay-b", ["outbox"], settings, tmp_path)
    try:
        # It tried the lock and stood by: the log line comes after a failed GET_LOCK, never before.
        await services.eventually(lambda: "relay_standing_by" in second.log(), timeout_s=20, what="relay-b standing by")
        assert "relay_became_active" not in second.log()
        first.kill()
        await services.eventually(
            lambda: "relay_became_active" in second.log(), timeout_s=5, what="relay-b to take over"
        )
        run = uuid.uuid4().hex[:8]
        written = await write_rows(pool, run, keys=2, per_key=3)
        got = await read_messages(settings.kafka_bootstrap, TOPIC, match=of_run(run), count=len(written), timeout_s=20)
        assert_complete_and_ordered(written, got)
    finally:
        first.kill()
        assert second.terminate() == 0


async def test_published_rows_past_the_retention_are_deleted_in_batches(
    settings: Settings, pool: aiomysql.Pool
) -> None:
    from datetime import timedelta

    from adapters.db.outbox_table import RETENTION_BATCH, delete_published

    run = uuid.uuid4().hex[:8]
    await write_rows(pool, run, keys=1, per_key=RETENTION_BATCH + 5, per_txn=500)
    await write_rows(pool, run + "-recent", keys=1, per_key=3)
    await write_rows(pool, run + "-pending", keys=1, per_key=2)
    async with pool.acquire() as conn, conn.cursor() as cur:
        old = (datetime.now(UTC) - timedelta(days=8)).replace(tzinfo=None)
        await cur.execute(
            "UPDATE outbox SET status = 'PUBLISHED', published_at = %s WHERE message_key = %s", (old, f"{run}-k0")
        )
        await cur.execute(
            "UPDATE outbox SET status = 'PUBLISHED', published_at = NOW(6) WHERE message_key = %s",
            (f"{run}-recent-k0",),
        )
    deleted = await delete_published(pool, older_than=timedelta(days=7))
    assert deleted == RETENTION_BATCH + 5
    left = dict(await fetch_all(pool, "SELECT status, COUNT(*) FROM outbox GROUP BY status"))
    assert left == {"PUBLISHED": 3, "PENDING": 2}


async def test_the_relay_serves_its_metrics(settings: Settings, pool: aiomysql.Pool, tmp_path: Path) -> None:
    import aiohttp

    port = services.free_port()
    relay = Process("relay-metrics", ["outbox"], replace(settings, relay_metrics_port=port), tmp_path)
    try:
        await write_rows(pool, uuid.uuid4().hex[:8], keys=2, per_key=5)

        async def scraped() -> str | None:
            try:
                async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
                    text = await r.text()
            except aiohttp.ClientError:
                return None
            return text if "outbox_published_total 10.0" in text else None

        text = await services.eventually(scraped, timeout_s=20, what="the relay's metrics to count 10 rows")
        assert "outbox_relay_active 1.0" in str(text)
        assert "outbox_publish_seconds_count" in str(text)
        assert "outbox_commit_to_ack_seconds_count 10.0" in str(text)  # one per published row
    finally:
        assert relay.terminate() == 0
