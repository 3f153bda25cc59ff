"""Long crash run (issue 13): rounds of kill -9 under load, then the loss check, with figures.

Each round kills, one after another and each restarted: the api, its file writer, a worker, the
active relay and MariaDB (a private mariadbd, tests/chaos.py). After all rounds, every accepted
upload must be READY with its WebP, every committed confirm's event on its topic in order, no
answer 500 INTERNAL_SERVER_ERROR and no process left behind. Writes bench/results/crash.json.
The CI test (tests/e2e/test_crash.py) is one round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from harness import write_results

from adapters.kafka.client import ensure_topics
from tests import chaos, services
from tests.conftest import make_settings


async def rounds(f: chaos.Fleet, count: int) -> tuple[list[list[dict]], chaos.Load, float]:
    load = chaos.Load(f"http://127.0.0.1:{f.settings.api_port}")
    running = asyncio.create_task(load.run())
    began = time.monotonic()
    done: list[list[dict]] = []
    try:
        await services.eventually(lambda: len(load.tally.accepted) >= 8, timeout_s=60, what="the load to start")
        for n in range(count):
            done.append(await chaos.kill_round(f, load))
            print(f"round {n + 1}/{count}: {done[-1]}", flush=True)
    finally:
        load.stop.set()
        await running
    return done, load, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    port = services.free_port()
    broker = services.Tansu(port, port)
    broker.start()
    try:
        asyncio.run(ensure_topics(make_settings(bootstrap=broker.bootstrap)))
        with (
            tempfile.TemporaryDirectory(prefix="images-crash-") as root,
            chaos.fleet(broker.bootstrap, Path(root)) as f,
        ):
            f.start_all()
            kills, load, seconds = asyncio.run(rounds(f, args.rounds))
            figures = asyncio.run(chaos.verify(f, load))
            codes = f.stop_all()
            chaos.check_no_leftovers(f, codes)
    finally:
        broker.stop()
    recovery = {}
    for what in [k["killed"] for k in kills[0]]:
        times = [k["recovered_s"] for r in kills for k in r if k["killed"] == what]
        recovery[what] = {"median_s": round(statistics.median(times), 2), "max_s": max(times)}
    write_results(
        "crash",
        {
            "rounds": args.rounds,
            "kills": sum(len(r) for r in kills),
            "seconds": round(seconds, 1),
            "recovery": recovery,
            **figures,
            "lost": 0,  # verify() raised otherwise
            "left_behind": 0,  # check_no_leftovers() raised otherwise
        },
    )


if __name__ == "__main__":
    main()
