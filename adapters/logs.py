"""structlog set-up: one renderer for our logs and the stdlib's (aiohttp, aiokafka, faust)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import structlog

from core.settings import Settings, SettingsError


def configure_logging(settings: Settings, *, process: str) -> None:
    """Configure structlog and stdlib logging once per process: JSON unless a person is watching."""
    as_json = settings.log_format == "json" or (settings.log_format == "auto" and not sys.stdout.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info if as_json else structlog.processors.StackInfoRenderer(),
    ]
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _add_process(process),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # aiohttp's access log duplicates our canonical request line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _add_process(process: str) -> Any:
    def add(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("process", process)
        return event

    return add


def start_process(env: Mapping[str, str], process: str) -> Settings:
    """Every shell's first two steps: read the settings (exit naming a bad variable), configure logging."""
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        sys.exit(f"{process}: bad configuration: {exc}")
    configure_logging(settings, process=process)
    return settings
