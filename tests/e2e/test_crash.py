"""kill -9 under load (issue 13): the api, its file writer, a worker, the active relay and MariaDB.

One round of kills, each followed by a restart and proof that uploads are accepted again; then
every accepted upload must end READY with its WebP, every committed confirm's event must be on
its topic in commit order, no answer may be 500 INTERNAL_SERVER_ERROR, no change answered 503 may
have committed, and no process any shell started may outlive it. `bench/crash.py` runs many rounds and reports the figures.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests import chaos, services


@pytest.fixture
def fleet(kafka: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    if not shutil.which("mariadb-install-db") or not Path(chaos.MARIADBD).exists():
        services.unavailable("mariadbd and mariadb-install-db (the crash test runs a MariaDB of its own)")
    with chaos.fleet(kafka, tmp_path) as f:
        f.start_all()
        try:
            yield f
        except BaseException:
            print("\n".join(f"== {n}\n{p.log()[-3000:]}" for n, p in f.processes.items()))
            raise


async def test_nothing_accepted_is_lost_when_each_process_is_killed(fleet: chaos.Fleet) -> None:
    load = chaos.Load(f"http://127.0.0.1:{fleet.settings.api_port}")
    running = asyncio.create_task(load.run())
    try:
        await services.eventually(lambda: len(load.tally.accepted) >= 8, timeout_s=60, what="the load to start")
        kills = await chaos.kill_round(fleet, load)
    finally:
        load.stop.set()
        await running
    figures = await chaos.verify(fleet, load)
    codes = await asyncio.to_thread(fleet.stop_all)
    chaos.check_no_leftovers(fleet, codes)
    print({"kills": kills, **figures})
    assert figures["confirms_committed"] > 0 and figures["uploads_accepted"] > 0
