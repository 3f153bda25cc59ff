"""Crash runs (issue 13): kill -9 each process of the fleet under load, then prove nothing was lost.

A fleet here is the real shells as subprocesses (one api, two workers, two relays) against a
MariaDB of its own (`PrivateMariaDb`: a mariadbd on a temporary data directory, so it can be
killed without touching the machine's server) and a Kafka-protocol broker. `Load` uploads and
confirms over HTTP the whole time, recording every answer. A kill is one `kill -9`; the killed
process (or MariaDB) is then started again, as a supervisor would, and the load must go on.

After the run `verify` checks what the issue asks: every upload answered 200 ends READY (or
CONFIRMED) with its WebP on disk; every confirm answered 200 has its IMAGES_CHANGED on the
topic, in the order they committed; no answer was 500 INTERNAL_SERVER_ERROR; no upload or confirm
answered 503 committed (issue 26: each upload has an uploaderId of its own and each confirm an
Idempotency-Key, so what committed is a row to look for); and no process any shell started (file
writer, conversion processes, forkservers) outlives it.
`tests/e2e/test_crash.py` runs one round of kills; `bench/crash.py` runs many and reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import random
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import aiomysql
import psutil
import pymysql
from PIL import Image

from adapters.db import mariadb
from core import idempotency
from core.dsn import DbDsn, parse_dsn
from core.settings import Settings
from tests import services
from tests.kafka_reader import read_messages
from tests.processes import Process

MARIADBD = "/usr/sbin/mariadbd"
TOPIC = "post-image-changed"
OK_UPLOAD_ANSWERS = {
    (200, None),
    (503, "SERVICE_UNAVAILABLE"),  # MariaDB is down
    (500, "IMAGE_SAVE_FAILED"),  # the file writer died with the batch (CONTRACT 2.1's code)
}


class PrivateMariaDb:
    """A mariadbd of our own on a temporary data directory: killed with -9 and started again on it."""

    def __init__(self, root: Path, *, extra_args: tuple[str, ...] = (), ssl: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = services.free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_args = extra_args  # more mariadbd options (TLS, say)
        self.ssl = ssl  # how `answers` connects when the server requires TLS

    @property
    def dsn(self) -> DbDsn:
        return parse_dsn(f"mysql://root@127.0.0.1:{self.port}/images_crash")

    def install(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.root / 'data'}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        log = (self.root / "mariadbd.log").open("ab")
        self.process = subprocess.Popen(
            [
                MARIADBD,
                "--no-defaults",
                f"--datadir={self.root / 'data'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.root / 'mariadbd.sock'}",
                f"--pid-file={self.root / 'mariadbd.pid'}",
                "--user=root",
                "--innodb-buffer-pool-size=128M",
                "--max-connections=500",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        services.wait_until(self.answers, timeout_s=120, what="the private mariadbd to answer")

    def answers(self) -> bool:
        try:
            pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1, ssl=self.ssl).close()
            return True
        except pymysql.err.OperationalError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None:
            services.stop_process(self.process, timeout_s=60)


class Trees:
    """Every process each shell started, seen by sampling its tree, so leftovers can be found later."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, float], str] = {}  # (pid, create time) -> owner
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self, processes: dict[str, Process]) -> None:
        for name, p in list(processes.items()):
            if not p.alive():
                continue
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(p.popen.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error), self._lock:
                        self.seen[(child.pid, child.create_time())] = name

    def watch(self, processes: dict[str, Process], interval_s: float = 0.2) -> None:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.sample(processes)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def alive_of(self, owner: str | None = None) -> list[str]:
        """The sampled processes (of `owner`, or of all) still running: what a kill left behind."""
        left = []
        with self._lock:
            items = list(self.seen.items())
        for (pid, created), name in items:
            if owner is not None and name != owner:
                continue
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{name}: pid {pid} {' '.join(p.cmdline())[:120]}")
        return left


@dataclass
class Fleet:
    """The shells, the private MariaDB and the log folder of one crash run."""

    settings: Settings
    db: PrivateMariaDb
    log_dir: Path
    processes: dict[str, Process] = field(default_factory=dict)
    trees: Trees = field(default_factory=Trees)
    generation: Counter[str] = field(default_factory=Counter)

    def start(self, name: str, args: list[str]) -> Process:
        self.generation[name] += 1
        log_name = f"{name}.{self.generation[name]}"
        self.processes[name] = Process(log_name, args, self.settings, self.log_dir)
        return self.processes[name]

    ARGS: ClassVar[dict[str, list[str]]] = {
        "api": ["api"],
        "workers-1": ["workers", "worker"],
        "workers-2": ["workers", "worker"],
        "relay-1": ["outbox"],
        "relay-2": ["outbox"],
    }

    def start_all(self) -> None:
        for name, args in self.ARGS.items():
            self.start(name, args)
        services.wait_until(
            lambda: services.port_answers(self.settings.api_port), timeout_s=60, what="the api to listen"
        )
        for name in ("workers-1", "workers-2"):
            services.wait_until(lambda n=name: self.worker_ready(n), timeout_s=90, what=f"{name} to join")
        self.trees.watch(self.processes)

    def worker_ready(self, name: str) -> bool:
        return "Worker ready" in self.processes[name].log()

    def active_relay(self) -> str | None:
        """The relay whose last word was becoming active."""
        for name in ("relay-1", "relay-2"):
            p = self.processes[name]
            roles = [
                e["event"] for e in p.log_events() if e.get("event") in ("relay_became_active", "relay_became_standby")
            ]
            if p.alive() and roles and roles[-1] == "relay_became_active":
                return name
        return None

    def kill(self, name: str) -> None:
        """kill -9 a shell, wait until every process of its tree is gone, and start it again."""
        self.trees.sample(self.processes)
        self.processes[name].kill()
        self.wait_tree_gone(name)
        self.start(name, self.ARGS[name])

    def wait_tree_gone(self, name: str) -> None:
        services.wait_until(
            lambda: not self.trees.alive_of(name), timeout_s=30, what=f"the processes {name} started to die with it"
        )

    def file_writer(self) -> psutil.Process:
        """The api's file writer process (waiting for a restarted api to have started it)."""
        api = psutil.Process(self.processes["api"].popen.pid)

        def writers() -> list[psutil.Process]:
            return [c for c in api.children() if "adapters.files.writer_helper" in c.cmdline()]

        services.wait_until(lambda: len(writers()) == 1, timeout_s=30, what="the api's file writer")
        return writers()[0]

    def count_converted(self, ids: list[str]) -> int:
        """How many of `ids` are READY or CONFIRMED (0 while MariaDB cannot be reached)."""
        dsn = self.settings.db_dsn
        try:
            conn = pymysql.connect(
                host=dsn.host, port=dsn.port, user=dsn.user, database=dsn.database, connect_timeout=1
            )
        except pymysql.err.OperationalError:
            return 0
        try:
            with conn.cursor() as cur:
                marks = ", ".join(["%s"] * len(ids))
                cur.execute(
                    f"SELECT COUNT(*) FROM images WHERE status IN ('READY', 'CONFIRMED') AND image_id IN ({marks})", ids
                )
                (n,) = cur.fetchone()
                return int(n)
        finally:
            conn.close()

    def stop_all(self) -> dict[str, int]:
        self.trees.sample(self.processes)
        self.trees.stop()
        return {name: p.terminate(60) for name, p in reversed(list(self.processes.items()))}


@contextlib.contextmanager
def fleet(kafka: str, root: Path, **overrides: Any) -> Iterator[Fleet]:
    """A private MariaDB with the schema, and the settings of a fleet on it (not started)."""
    from tests.conftest import make_settings

    db = PrivateMariaDb(root / "mariadb")
    db.install()
    db.start()
    upload_dir = root / "uploads"
    upload_dir.mkdir(parents=True)
    log_dir = root / "logs"
    log_dir.mkdir()
    try:
        asyncio.run(mariadb.apply_schema(db.dsn))
        port = services.free_port()
        settings = replace(
            make_settings(db_dsn=db.dsn, bootstrap=kafka, upload_dir=str(upload_dir)),
            api_port=port,
            base_url=f"http://127.0.0.1:{port}/images/",
            worker_app_id=f"crash-{port}",
            convert_processes=1,
            **overrides,
        )
        f = Fleet(settings, db, log_dir)
        try:
            yield f
        finally:
            f.trees.stop()
            for p in f.processes.values():
                p.kill()
    finally:
        db.stop()
        shutil.rmtree(root / "mariadb", ignore_errors=True)


def _photo(seed: int) -> bytes:
    rnd = random.Random(seed)
    small = Image.frombytes("RGB", (40, 30), rnd.randbytes(40 * 30 * 3))
    out = io.BytesIO()
    small.resize((320, 240)).save(out, "JPEG", quality=80)
    return out.getvalue()


@dataclass
class Tally:
    """Every answer the load got."""

    accepted: list[str] = field(default_factory=list)
    answers: Counter[tuple[int, str | None]] = field(default_factory=Counter)  # (status, code)
    unanswered: int = 0  # connection refused or dropped: the api was down or died mid-request
    confirmed: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)  # reference -> lists answered 200
    confirms_unknown: int = 0
    confirm_answers: Counter[tuple[int, str | None]] = field(default_factory=Counter)
    accepted_at: list[float] = field(default_factory=list)
    # What 503 was said to (each upload has an uploaderId of its own, each confirm an
    # Idempotency-Key): none of it may have committed. Confirm keys answered 200, to check the check.
    unavailable_uploads: list[str] = field(default_factory=list)
    unavailable_confirms: list[str] = field(default_factory=list)
    confirmed_keys: list[str] = field(default_factory=list)

    def accepted_since(self, t: float) -> list[str]:
        return [i for i, at in zip(self.accepted, self.accepted_at, strict=True) if at >= t]


class Load:
    """Uploads (two photos each, several in flight) and per-reference confirms, until stopped."""

    def __init__(self, base_url: str, *, uploaders: int = 3, references: int = 3, pause_s: float = 0.2) -> None:
        self.base = base_url
        self.uploaders = uploaders
        self.pause_s = pause_s  # between one uploader's uploads: ~30 images/s with the defaults
        self.references = [f"crash-{uuid.uuid4().hex[:8]}-{n}" for n in range(references)]
        self.tally = Tally()
        self.stop = asyncio.Event()
        self._photos = [_photo(n) for n in range(8)]

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(
                *(self._uploader(session) for _ in range(self.uploaders)),
                *(self._confirmer(session, r) for r in self.references),
            )

    async def _upload(self, session: aiohttp.ClientSession, count: int) -> list[str]:
        form = aiohttp.FormData()
        for _ in range(count):
            form.add_field("files", random.choice(self._photos), filename="p.jpg", content_type="image/jpeg")
        uploader = f"crash-{uuid.uuid4().hex[:12]}"  # one per request: its rows, if any, are findable
        form.add_field("uploaderId", uploader)
        form.add_field("category", "POST")
        try:
            async with session.post(f"{self.base}/api/images", data=form) as r:
                body = await r.json(content_type=None)
                status = r.status
        except (TimeoutError, aiohttp.ClientError, ValueError):
            self.tally.unanswered += 1
            await asyncio.sleep(0.05)  # the api is down: do not spin
            return []
        if status != 200:
            self.tally.answers[(status, body.get("code") if isinstance(body, dict) else None)] += 1
            if status == 503:
                self.tally.unavailable_uploads.append(uploader)
            await asyncio.sleep(0.05)
            return []
        self.tally.answers[(200, None)] += 1
        ids = [b["id"] for b in body]
        self.tally.accepted += ids
        self.tally.accepted_at += [time.monotonic()] * len(ids)
        return ids

    async def _uploader(self, session: aiohttp.ClientSession) -> None:
        while not self.stop.is_set():
            await self._upload(session, 2)
            await asyncio.sleep(self.pause_s)

    async def _ready(self, session: aiohttp.ClientSession, image_id: str) -> bool:
        try:
            async with session.get(f"{self.base}/api/v1/images/{image_id}") as r:
                return r.status == 200 and (await r.json())["status"] == "READY"
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return False

    async def _confirmer(self, session: aiohttp.ClientSession, reference: str) -> None:
        """Own four images, then confirm them to `reference` in a new order each time, one at a time."""
        mine: list[str] = []
        while len(mine) < 4 and not self.stop.is_set():
            mine += await self._upload(session, 4 - len(mine))
        for image_id in mine:
            await services.eventually(
                lambda i=image_id: self._ready(session, i), timeout_s=120, what=f"image {image_id} to be READY"
            )
        orders = list(itertools.permutations(mine))
        random.shuffle(orders)
        done = self.tally.confirmed.setdefault(reference, [])
        for order in itertools.cycle(orders):
            if self.stop.is_set():
                return
            if done and order == done[-1]:
                continue
            body = {"imageIds": list(order), "referenceId": reference}
            key = str(uuid.uuid4())  # a key per attempt: whether it committed is then a row to look for
            try:
                async with session.post(
                    f"{self.base}/api/v1/images/confirm", json=body, headers={"Idempotency-Key": key}
                ) as r:
                    status = r.status
                    code = None if status == 200 else (await r.json(content_type=None)).get("code")
            except (TimeoutError, aiohttp.ClientError, ValueError):
                self.tally.confirms_unknown += 1
                await asyncio.sleep(0.05)
                continue
            self.tally.confirm_answers[(status, code)] += 1
            if status == 503:
                self.tally.unavailable_confirms.append(key)
            if status == 200:
                done.append(order)
                self.tally.confirmed_keys.append(key)
            else:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.02)


async def verify(f: Fleet, load: Load, *, timeout_s: float = 180) -> dict[str, Any]:
    """Check nothing accepted was lost; return the figures. Raises AssertionError on any loss."""
    tally = load.tally
    server_errors = {
        a: n for a, n in (tally.answers + tally.confirm_answers).items() if a[1] == "INTERNAL_SERVER_ERROR"
    }
    assert not server_errors, f"answered 500 INTERNAL_SERVER_ERROR: {server_errors}"
    unexpected = {a: n for a, n in tally.answers.items() if a not in OK_UPLOAD_ANSWERS}
    assert not unexpected, f"uploads got answers a crash does not explain: {unexpected}"
    confirm_unexpected = {
        a: n
        for a, n in tally.confirm_answers.items()
        # IMAGE_SAVE_FAILED: the connection broke once the COMMIT was sent, the outcome is unknown (CONTRACT 2)
        if a not in {(200, None), (503, "SERVICE_UNAVAILABLE"), (500, "IMAGE_SAVE_FAILED")}
    }
    assert not confirm_unexpected, f"confirms got answers a crash does not explain: {confirm_unexpected}"

    pool = await mariadb.create_pool(f.settings.db_dsn, size=2)
    ids = sorted(set(tally.accepted))
    try:

        async def statuses() -> dict[str, tuple[str, str | None]]:
            found: dict[str, tuple[str, str | None]] = {}
            async with pool.acquire() as conn, conn.cursor() as cur:
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    marks = ", ".join(["%s"] * len(chunk))
                    await cur.execute(
                        "SELECT i.image_id, i.status, s.storage_location FROM images i"
                        f" LEFT JOIN storage_objects s USING (image_id) WHERE i.image_id IN ({marks})",
                        chunk,
                    )
                    found |= {i: (st, loc) for i, st, loc in await cur.fetchall()}
            return found

        async def all_converted() -> dict[str, tuple[str, str | None]] | None:
            found = await statuses()
            done = len(found) == len(ids) and all(st in ("READY", "CONFIRMED") for st, _ in found.values())
            return found if done else None

        started = time.monotonic()
        try:
            found = await services.eventually(
                all_converted, timeout_s=timeout_s, what="every accepted upload to be READY"
            )
        except AssertionError:
            found = await statuses()
            missing = [i for i in ids if i not in found]
            by_status = Counter(st for st, _ in found.values())
            raise AssertionError(
                f"accepted {len(ids)}: rows missing {len(missing)}, statuses {dict(by_status)}"
            ) from None
        drained_s = time.monotonic() - started
        await _check_unavailable_means_nothing_stored(pool, tally)
    finally:
        pool.close()
        await pool.wait_closed()
    root = Path(f.settings.upload_dir)
    no_file = [i for i, (_, loc) in found.items() if not loc or not (root / loc).is_file()]  # type: ignore[union-attr]
    assert not no_file, f"{len(no_file)} READY images without their file, e.g. {no_file[:3]}"
    not_webp = [i for i, (_, loc) in found.items() if not str(loc).endswith(".webp")]
    assert not not_webp, f"{len(not_webp)} images not converted to WebP, e.g. {not_webp[:3]}"

    keys = set(tally.confirmed)
    expected = sum(len(v) for v in tally.confirmed.values())
    messages = await read_messages(
        f.settings.kafka_bootstrap, TOPIC, match=lambda m: m.key in keys, count=expected, timeout_s=60, settle_s=2
    )
    seen_ids: set[str] = set()
    announced: dict[str, list[tuple[str, ...]]] = {k: [] for k in keys}
    duplicates = 0
    for m in messages:
        if m.value["eventId"] in seen_ids:
            duplicates += 1  # at least once: a relay killed before marking a row re-publishes it
            continue
        seen_ids.add(m.value["eventId"])
        announced[str(m.key)].append(tuple(i["imageId"] for i in m.value["payload"]["images"]))
    for reference, lists in tally.confirmed.items():
        it = iter(announced[reference])
        in_order = all(any(a == want for a in it) for want in lists)  # a subsequence, in commit order
        assert in_order, f"{reference}: confirmed {lists} but announced {announced[reference]}"
    return {
        "uploads_accepted": len(ids),
        "upload_answers": {f"{s} {c or ''}".strip(): n for (s, c), n in sorted(tally.answers.items(), key=str)},
        "uploads_unanswered": tally.unanswered,
        "confirms_committed": expected,
        "confirm_answers": {
            f"{s} {c or ''}".strip(): n for (s, c), n in sorted(tally.confirm_answers.items(), key=str)
        },
        "confirms_unanswered": tally.confirms_unknown,
        "events_read": len(messages),
        "duplicate_events": duplicates,
        "drain_s": round(drained_s, 1),
    }


async def _rows(pool: aiomysql.Pool, sql: str, values: list[str]) -> set[str]:
    found: set[str] = set()
    async with pool.acquire() as conn, conn.cursor() as cur:
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            await cur.execute(sql.format(marks=", ".join(["%s"] * len(chunk))), chunk)
            found |= {row[0] for row in await cur.fetchall()}
    return found


async def _check_unavailable_means_nothing_stored(pool: aiomysql.Pool, tally: Tally) -> None:
    """CONTRACT 2: a 503 says nothing was stored. Not one upload or confirm answered 503 may have committed."""
    stored = await _rows(
        pool, "SELECT DISTINCT uploader_id FROM images WHERE uploader_id IN ({marks})", tally.unavailable_uploads
    )
    assert not stored, f"uploads answered 503 that committed: {sorted(stored)[:5]}"

    def hashed(keys: list[str]) -> list[str]:  # as the api stores a confirm's key (no caller: auth is off)
        return [idempotency.request_of(idempotency.CONFIRM, "", key, []).key_hash for key in keys]

    query = "SELECT key_hash FROM idempotency_keys WHERE key_hash IN ({marks})"
    committed = await _rows(pool, query, hashed(tally.unavailable_confirms))
    assert not committed, f"{len(committed)} confirms answered 503 committed"
    found = await _rows(pool, query, hashed(tally.confirmed_keys))
    assert len(found) == len(tally.confirmed_keys), "the check cannot find confirms that did commit"


def check_no_leftovers(f: Fleet, codes: dict[str, int]) -> None:
    """After the stop: every shell exited 0 on SIGTERM and nothing it ever started still runs."""
    bad = {n: c for n, c in codes.items() if c != 0}
    assert not bad, f"processes did not stop cleanly on SIGTERM: {bad}"
    services.wait_until(lambda: not f.trees.alive_of(), timeout_s=30, what="every child process to be gone")


async def kill_round(f: Fleet, load: Load, *, progress: int = 4, recover_s: float = 120) -> list[dict[str, Any]]:
    """kill -9, one after another under load: the api, its file writer, a worker, the active relay, MariaDB.

    After each, the load must get `progress` more uploads accepted (the fleet recovered); returns
    how long that took per kill.
    """
    tally = load.tally
    figures: list[dict[str, Any]] = []

    async def recovered(what: str, killed_at: float) -> None:
        since = time.monotonic()  # uploads answered by the process before it died do not count

        def converted() -> bool:
            ids = tally.accepted_since(since)[:progress]
            return len(ids) == progress and f.count_converted(ids) == progress

        await asyncio.to_thread(
            services.wait_until,
            converted,
            timeout_s=recover_s,
            what=f"uploads to be accepted and converted again after killing {what}",
            interval_s=0.1,
        )
        figures.append({"killed": what, "recovered_s": round(time.monotonic() - killed_at, 2)})

    async def kill_shell(name: str, what: str) -> None:
        since = time.monotonic()
        await asyncio.to_thread(f.kill, name)
        await recovered(what, since)

    await kill_shell("api", "the api")

    since = time.monotonic()
    writer = await asyncio.to_thread(f.file_writer)
    os.kill(writer.pid, signal.SIGKILL)
    await recovered("the api's file writer", since)

    await kill_shell("workers-1", "a worker")
    await asyncio.to_thread(
        services.wait_until, lambda: f.worker_ready("workers-1"), timeout_s=90, what="the new worker to join"
    )

    active = await asyncio.to_thread(f.active_relay)
    assert active is not None, "no relay says it is active"
    since = time.monotonic()
    await asyncio.to_thread(f.kill, active)
    standby = "relay-2" if active == "relay-1" else "relay-1"
    await asyncio.to_thread(
        services.wait_until,
        lambda: f.active_relay() == standby,
        timeout_s=60,
        what=f"{standby} to take over from the killed {active}",
    )
    figures.append({"killed": "the active relay", "recovered_s": round(time.monotonic() - since, 2)})

    since = time.monotonic()
    outage_answers = tally.answers[(503, "SERVICE_UNAVAILABLE")]
    await asyncio.to_thread(f.db.kill)
    await services.eventually(
        lambda: tally.answers[(503, "SERVICE_UNAVAILABLE")] > outage_answers,
        timeout_s=30,
        what="uploads to be answered 503 while MariaDB is down",
    )
    await asyncio.to_thread(f.db.start)
    await recovered("MariaDB", since)
    return figures
