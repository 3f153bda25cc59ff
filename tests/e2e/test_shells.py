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
