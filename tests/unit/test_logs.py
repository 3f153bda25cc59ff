"""Log set-up: one JSON shape for our lines and the stdlib's, levels honoured."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest
import structlog

from adapters.logs import configure_logging
from core.settings import Settings


@pytest.fixture
def stdout() -> Iterator[io.TextIOWrapper]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


def written(stream: io.TextIOWrapper) -> str:
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode()


def test_json_lines_from_structlog_and_stdlib_share_one_shape(stdout: io.TextIOWrapper) -> None:
    configure_logging(replace(Settings(), log_format="json", log_level="INFO"), process="api", stream=stdout)
    structlog.contextvars.bind_contextvars(request_id="r-1")
    log = structlog.get_logger("api.request")
    log.debug("not_shown")
    log.info("request_handled", image_ids=["a"], file_name="사진.jpg")
    logging.getLogger("aiohttp.server").warning("from %s", "aiohttp")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("request_failed")
    lines = [json.loads(line) for line in written(stdout).splitlines()]
    assert [(e["event"], e["level"], e["logger"]) for e in lines] == [
        ("request_handled", "info", "api.request"),
        ("from aiohttp", "warning", "aiohttp.server"),
        ("request_failed", "error", "api.request"),
    ]
    assert all(e["process"] == "api" and e["request_id"] == "r-1" and e["timestamp"].endswith("Z") for e in lines)
    assert lines[0]["image_ids"] == ["a"] and lines[0]["file_name"] == "사진.jpg"
    assert "ValueError: boom" in lines[2]["exception"]


def test_console_lines_are_for_people(stdout: io.TextIOWrapper) -> None:
    configure_logging(replace(Settings(), log_format="console", log_level="WARNING"), process="workers", stream=stdout)
    structlog.get_logger("workers").info("not_shown")
    structlog.get_logger("workers").warning("slow_conversion", ms=900)
    text = written(stdout)
    assert "not_shown" not in text
    assert "slow_conversion" in text and "[workers]" in text and "ms=900" in text and "process=workers" in text


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_service_start_and_stop_steps_are_dropped_below_debug(stdout: io.TextIOWrapper, level: str) -> None:
    configure_logging(replace(Settings(), log_format="json", log_level=level), process="workers", stream=stdout)
    faust = logging.getLogger("faust.transport.conductor")
    faust.info("[^---Conductor]: Starting...")
    faust.info("[^--Producer]: Creating topic %r", "image-workers-__assignor-__leader")
    logging.getLogger("mode.supervisors").info("[^----OneForOneSupervisor: (4@0x7f)]: Stopping...")
    logging.getLogger("faust.tables.recovery").info("[^---Recovery]: Worker ready")
    logging.getLogger("aiokafka.consumer.group_coordinator").info("Joined group 'image-workers' (generation 0)")
    faust.warning("[^---Conductor]: Stopping... took too long")
    events = [json.loads(line)["event"] for line in written(stdout).splitlines()]
    kept = ["[^---Recovery]: Worker ready", "Joined group 'image-workers' (generation 0)"]
    dropped = [
        "[^---Conductor]: Starting...",
        "[^--Producer]: Creating topic 'image-workers-__assignor-__leader'",
        "[^----OneForOneSupervisor: (4@0x7f)]: Stopping...",
    ]
    warning = "[^---Conductor]: Stopping... took too long"
    if level == "INFO":
        assert events == [*kept, warning]
    else:  # DEBUG keeps every line, in order
        assert events == [*dropped, *kept, warning]
