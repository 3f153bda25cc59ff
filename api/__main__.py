"""`python -m api`: serve the HTTP API until SIGTERM/SIGINT."""

from __future__ import annotations

import os

import structlog
from aiohttp import web

from adapters.logs import start_process
from api.app import create_app


def main() -> None:
    """Read settings, configure logging, build the app, run it."""
    settings = start_process(os.environ, "api")
    log = structlog.get_logger("api")
    app = create_app(settings)

    async def announce(_: web.Application) -> None:
        log.info("api_listening", url=f"http://{settings.api_host}:{settings.api_port}/")

    async def stopping(_: web.Application) -> None:
        log.info("stopping")

    app.on_startup.append(announce)
    app.on_shutdown.append(stopping)
    # run_app handles SIGTERM and SIGINT: stop accepting, finish in-flight requests, run cleanups.
    web.run_app(app, host=settings.api_host, port=settings.api_port, print=None, access_log=None, shutdown_timeout=15)
    log.info("stopped")


if __name__ == "__main__":
    main()
