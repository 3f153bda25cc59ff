"""`python -m api`: serve the HTTP API until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import os

import structlog

from adapters.logs import start_process
from api.app import create_app
from api.auth import warn_if_open
from api.server import serve


def main() -> None:
    """Read settings, configure logging, build the app, serve it until SIGTERM/SIGINT."""
    settings = start_process(os.environ, "api")
    log = structlog.get_logger("api")
    warn_if_open(settings)
    app = create_app(settings)
    # Stop accepting, finish in-flight requests (up to 15 s), run the cleanups.
    asyncio.run(
        serve(app, settings.api_host, settings.api_port, metrics_port=settings.api_metrics_port, shutdown_timeout=15)
    )
    log.info("stopped")


if __name__ == "__main__":
    main()
