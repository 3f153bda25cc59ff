"""`python -m outbox`: run one relay replica until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal

import prometheus_client
import structlog

from adapters.db import mariadb
from adapters.kafka.client import create_producer
from adapters.kafka.security import stop_if_refused
from adapters.logs import start_process
from core.settings import Settings
from outbox.relay import Relay


async def serve(settings: Settings) -> None:
    """Build the pool, producer and relay; stop cleanly on a signal."""
    log = structlog.get_logger("outbox")
    pool = await mariadb.open_pool(settings.db_dsn, size=2)
    relay = Relay(settings, pool, create_producer(settings))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(relay, log))
    if settings.relay_metrics_port:
        # A small HTTP thread of prometheus_client; the relay loop itself stays on asyncio.
        prometheus_client.start_http_server(settings.relay_metrics_port, addr=settings.api_host)
    log.info(
        "relay_started",
        dsn=str(settings.db_dsn),
        bootstrap=settings.kafka_bootstrap,
        metrics_port=settings.relay_metrics_port or None,
    )
    try:
        await relay.run()
    finally:
        await relay.close()
        pool.close()
        await pool.wait_closed()
        log.info("stopped")


def _stopper(relay: Relay, log: structlog.typing.FilteringBoundLogger) -> object:
    def stop() -> None:
        log.info("stopping")
        relay.stop()

    return stop


def main() -> None:
    """Read settings, configure logging, run the relay."""
    settings = start_process(os.environ, "outbox")
    stop_if_refused(settings, "outbox")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
