"""Schemathesis against the running stack's `/openapi.json` (issue 13): no server error, no undocumented status.

A bounded run with a fixed seed, so a failure here reproduces; `bench/fuzz.py` runs the long one
(thousands of cases, random seeds) and writes its figures.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests import fuzz
from tests.e2e.conftest import Stack

EXAMPLES = 50  # per operation and phase: ~1,000 cases in ~15 s on the 2-core machine
SEED = 20261201


async def test_the_api_answers_every_generated_request_as_its_document_says(stack: Stack, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{stack.settings.api_port}"
    done = await asyncio.to_thread(fuzz.run, base, examples=EXAMPLES, seed=SEED, report_dir=tmp_path, timeout_s=300)
    assert done.returncode == 0, done.failures() or done.output[-4000:]
    assert done.cases >= 500, f"schemathesis sent only {done.cases} cases:\n{done.output[-2000:]}"
    api = stack.processes["api"]
    assert api.alive()
    errors = [e for e in api.log_events() if e.get("level") in ("error", "critical")]
    assert not errors, f"the api logged errors under fuzzing: {errors[:5]}"
