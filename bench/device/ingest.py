"""Ingest benchmark on a lent 16-core machine, where MariaDB, wrk, the api and the bare handler need not share cores.

The same measurement as bench/ingest.py (paired alternating rounds, medians, CPU per upload),
without the Kafka broker, which uploads never touch. Run through bench/device/run.sh; writes
$OUT/ingest-device.json, which goes to bench/results/ for report.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import SIZES, jpeg_of_size, paired_rounds  # noqa: E402

from adapters.db import mariadb  # noqa: E402
from core.dsn import parse_dsn  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests import services  # noqa: E402
from tests.processes import Process  # noqa: E402

OUT = Path(os.environ.get("OUT", "/tmp/out"))


def fsync_probe(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    data = os.urandom(100 * 1024)
    began = time.perf_counter()
    for n in range(200):
        fd = os.open(folder / f"{n}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
    return {"write_fsync_100KiB_ms": round((time.perf_counter() - began) / 200 * 1000, 3)}


def main() -> None:
    rounds, seconds = int(sys.argv[1]), float(sys.argv[2])
    cases = [(s, int(c)) for s, c in (x.split(":") for x in sys.argv[3].split(","))]
    socket_path = os.environ.get("DEV_DB_SOCKET", "/tmp/mysqld.sock")
    dsn = parse_dsn(f"mysql://root@127.0.0.1:3306/images_bench_ingest?unix_socket={socket_path}")
    asyncio.run(services.drop_database(dsn))
    asyncio.run(mariadb.apply_schema(dsn))
    upload_dir = Path("/tmp/images-bench-ingest")
    shutil.rmtree(upload_dir, ignore_errors=True)
    upload_dir.mkdir(parents=True)
    (upload_dir / "bare").mkdir()
    api_port, bare_port = services.free_port(), services.free_port()
    settings = replace(
        Settings(),
        db_dsn=dsn,
        upload_dir=str(upload_dir),
        api_port=api_port,
        log_level="INFO",
        kafka_bootstrap="127.0.0.1:9",
    )
    log_dir = OUT / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "uname": os.uname().release,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    machine |= fsync_probe(Path("/tmp/fsync-probe"))
    print(machine, flush=True)
    api = Process("api", ["api"], settings, log_dir)
    bare = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bare_upload.py"), str(bare_port), str(upload_dir / "bare")]
    )
    rows = []
    try:
        services.wait_until(lambda: services.port_answers(api_port), timeout_s=60, what="api")
        services.wait_until(lambda: services.port_answers(bare_port), timeout_s=60, what="bare")
        servers = (("bare aiohttp", bare_port, bare.pid), ("image-server", api_port, api.popen.pid))
        for size_name, concurrency in cases:
            rows += paired_rounds(servers, size_name, jpeg_of_size(SIZES[size_name]), concurrency, rounds, seconds)
            print(rows[-2:], flush=True)
    finally:
        api.terminate()
        bare.terminate()
        bare.wait()
        (OUT / "ingest-device.json").write_text(
            json.dumps({"machine": machine, "load_generator": "wrk -t2", "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
