"""Every process shell refuses to start on a bad setting, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT


@pytest.mark.parametrize("args", [["api"], ["outbox"], ["workers", "worker"]])
def test_a_bad_setting_stops_the_process_at_start_naming_the_variable(args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGES_")} | {"IMAGES_RELAY_BATCH_SIZE": "-3"}
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "IMAGES_RELAY_BATCH_SIZE" in done.stderr


def test_an_admin_command_prints_its_answer_on_stdout_and_logs_on_stderr(settings) -> None:  # type: ignore[no-untyped-def]
    """`python -m workers outbox | jq`: stdout carries the JSON answer only, never a log line."""
    from tests.processes import settings_env

    env = {**os.environ, **settings_env(settings), "IMAGES_LOG_LEVEL": "DEBUG", "IMAGES_LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "-m", "workers", "health"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "db=UP kafka=UP store=UP", done.stdout
    assert '"event":' in done.stderr  # its log lines went to stderr
