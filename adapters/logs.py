"""structlog set-up: one renderer for our logs and the stdlib's (aiohttp, aiokafka, faust)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import orjson
import structlog

from adapters.settings_files import load_files
from core.settings import Settings, SettingsError


def configure_logging(settings: Settings, *, process: str, stream: TextIO | None = None) -> None:
    """Configure structlog and stdlib logging once per process: JSON unless a person is watching.

    Our own lines go straight from structlog to stdout (orjson-rendered bytes in JSON mode), not
    through the stdlib logging bridge: the api writes one per request, and through the bridge
    that line cost 27 us of the event loop's time, now about a quarter of that. Lines of the
    libraries that log through stdlib logging (aiohttp, aiokafka, faust) get the same shape from
    a ProcessorFormatter.
    """
    out = stream or sys.stdout
    as_json = settings.log_format == "json" or (settings.log_format == "auto" and not out.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info if as_json else structlog.processors.StackInfoRenderer(),
    ]
    own_renderer: Any
    if as_json:
        own_renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = _NamedLoggerFactory(structlog.BytesLogger, out.buffer)
        renderer: Any = structlog.processors.JSONRenderer(serializer=_orjson_text)
    else:
        own_renderer = renderer = structlog.dev.ConsoleRenderer(colors=False)
        factory = _NamedLoggerFactory(structlog.PrintLogger, out)
    structlog.configure(
        processors=[*shared, _add_process(process), own_renderer],
        logger_factory=factory,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[settings.log_level]),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
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
    handler.addFilter(_quiet_service_lifecycle)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # aiohttp's access log duplicates our canonical request line; botocore says at INFO where it
    # found the credentials and the endpoint, at every client it makes (the admin commands' too).
    for chatty in ("aiohttp.access", "botocore", "aiobotocore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


# mode's services (Faust's parts, and ours built on them) log each step of starting and stopping at
# INFO: ~25 lines per worker start and as many per stop, which buried what a person needs to see.
# Kept: "Worker ready" (the tests and benchmarks wait for it), joins, assignments, every warning.
_LIFECYCLE = re.compile(
    r"^\[\^-*.+?\]: (Starting|Stopping|Waiting for|Gathering|Closing event loop|Creating topic|Topic )"
)


def _quiet_service_lifecycle(record: logging.LogRecord) -> bool:
    """Drop an INFO line of a service starting or stopping; keep everything else (DEBUG keeps all)."""
    if record.levelno != logging.INFO or logging.getLogger().level <= logging.DEBUG:
        return True
    return not (isinstance(record.msg, str) and _LIFECYCLE.match(record.getMessage()))


class _NamedLoggerFactory:
    """structlog's print/bytes loggers, each carrying the name it was asked for (`logger` field)."""

    def __init__(self, kind: type[structlog.BytesLogger] | type[structlog.PrintLogger], file: Any) -> None:
        self._kind = kind
        self._file = file

    def __call__(self, *args: Any) -> Any:
        logger = self._kind(self._file)
        logger.name = args[0] if args else None  # type: ignore[union-attr]
        return logger


def _orjson_text(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj).decode()


def _add_process(process: str) -> Any:
    def add(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("process", process)
        return event

    return add


def start_process(env: Mapping[str, str], process: str, *, stream: TextIO | None = None) -> Settings:
    """Every shell's first two steps: read the settings (exit naming a bad variable), configure logging.

    `stream`: where log lines go (stdout by default; a command whose stdout is its output logs to stderr).
    """
    try:
        settings = load_files(Settings.from_env(env))
    except SettingsError as exc:
        sys.exit(f"{process}: bad configuration: {exc}")
    configure_logging(settings, process=process, stream=stream)
    return settings
